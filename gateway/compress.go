package gateway

import (
	"compress/gzip"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// compressibleTypes are the static text types that are gzipped, as in the seed's
// server.compression.mime-types. Streams (text/event-stream, SockJS xhr_streaming's
// application/javascript without a length) are never compressed: gzip would hold frames back.
var compressibleTypes = map[string]bool{
	"text/html": true, "text/css": true, "application/javascript": true,
	"text/javascript": true, "application/json": true,
}

// minCompressBytes skips bodies too small for gzip to pay off.
const minCompressBytes = 512

var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// acceptsGzip reports whether the client accepts gzip (and did not set q=0).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
				q := strings.ReplaceAll(params, " ", "")
				return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
			}
		}
	}
	return false
}

// gzipWriter compresses a response when, at WriteHeader, it is a 200 with a compressible type,
// a known Content-Length of at least minCompressBytes and no Content-Encoding. Otherwise it
// passes everything through unchanged, flushes included.
type gzipWriter struct {
	http.ResponseWriter
	head    bool
	decided bool
	gz      *gzip.Writer
}

func (w *gzipWriter) WriteHeader(code int) {
	if w.decided || code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.decided = true
	h := w.Header()
	if code == http.StatusOK && !w.head && h.Get("Content-Encoding") == "" && compressible(h) {
		h.Del("Content-Length")
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
			h.Set("Etag", "W/"+et) // the bytes differ from the identity representation
		}
		h.Del("Accept-Ranges")
		w.gz = gzipPool.Get().(*gzip.Writer)
		w.gz.Reset(w.ResponseWriter)
	}
	w.ResponseWriter.WriteHeader(code)
}

func compressible(h http.Header) bool {
	n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil || n < minCompressBytes {
		return false
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && compressibleTypes[mt]
}

func (w *gzipWriter) Write(b []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.gz != nil {
		return w.gz.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// FlushError flushes compressed bytes written so far, then the connection.
func (w *gzipWriter) FlushError() error {
	if w.gz != nil {
		if err := w.gz.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the server's writer for deadlines.
func (w *gzipWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher.
func (w *gzipWriter) Flush() { _ = w.FlushError() }

// finish ends the gzip stream; it must be called when the handler is done.
func (w *gzipWriter) finish() {
	if w.gz == nil {
		return
	}
	_ = w.gz.Close()
	w.gz.Reset(nil)
	gzipPool.Put(w.gz)
	w.gz = nil
}
