package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pushgatev1 "github.com/pushgate/pushgate/gen/pushgate/v1"
)

// ---- conns -------------------------------------------------------------

// procSample is memory and runtime figures of every watched process.
func procSample(procs []proc) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, p := range procs {
		m := map[string]float64{}
		if rss, err := rssBytes(p.PID); err == nil {
			m["rss_bytes"] = rss
		}
		if p.Metrics != "" {
			if v, err := scrape(p.Metrics, "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes",
				"go_memstats_sys_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines", "pushgate_broker_subscriptions", "pushgate_broker_connections"); err == nil {
				for k, x := range v {
					m[k] = x
				}
			}
		}
		out[p.Name] = m
	}
	return out
}

// sumOver adds metric k over the processes whose name starts with prefix.
func sumOver(s map[string]map[string]float64, prefix, k string) float64 {
	t := 0.0
	for name, m := range s {
		if strings.HasPrefix(name, prefix) {
			t += m[k]
		}
	}
	return t
}

// serverGroup is the processes that hold the sessions: the edges for
// pushgate, the broker for web-stomp.
func serverGroup(c *config) string {
	if c.Target == "webstomp" {
		return "broker"
	}
	return "edge" // pushgate's edges; Centrifugo is given as edge1
}

func runConns(ctx context.Context, c *config, res *result) error {
	before := procSample(c.Procs)
	group := serverGroup(c)
	var checkpoints []map[string]any
	dests := func(i int) []string {
		var d []string
		if c.Target != "webstomp" {
			d = append(d, "/user/topic/greetings")
		} else {
			// web-stomp has no user destinations: a queue per user, as
			// Spring's broker relay makes.
			d = append(d, "/topic/bench.user."+strconv.Itoa(i))
		}
		if c.StormTopic != "" {
			d = append(d, c.StormTopic)
		}
		return d
	}
	at := func(k int, elapsed time.Duration) {
		cp := map[string]any{"sessions": k, "elapsed_s": elapsed.Seconds()}
		if c.Target == "pushgate" {
			for _, p := range c.Procs {
				if !strings.HasPrefix(p.Name, "edge") {
					continue
				}
				n, err := tcpConnsTo(p.PID, c.BrokerPort)
				if err == nil {
					cp[p.Name+"_broker_connections"] = n
				}
				if p.Metrics != "" {
					if v, err := scrape(p.Metrics, "pushgate_broker_subscriptions"); err == nil {
						cp[p.Name+"_broker_subscriptions"] = v["pushgate_broker_subscriptions"]
					}
				}
			}
		}
		if c.QueuesCmd != "" {
			out, err := exec.Command("sh", "-c", c.QueuesCmd).Output()
			if n, perr := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && perr == nil {
				cp["broker_queues"] = n
			}
		}
		checkpoints = append(checkpoints, cp)
		fmt.Fprintf(os.Stderr, "conns: %d sessions up after %.2fs\n", k, elapsed.Seconds())
	}
	ss, took, err := openSessions(ctx, c, c.N, dests, func(int) func([]byte) { return nil }, at)
	if err != nil {
		return err
	}
	defer closeAll(ss)
	time.Sleep(c.Idle)
	after := procSample(c.Procs)
	up, aliveErr := alive(ss)
	n := float64(c.N)
	ph := map[string]any{
		"mode":               "idle",
		"sessions":           c.N,
		"sessions_alive":     up,
		"connect_seconds":    took.Seconds(),
		"connects_per_s":     n / took.Seconds(),
		"rss_per_session_kb": (sumOver(after, group, "rss_bytes") - sumOver(before, group, "rss_bytes")) / n / 1024,
		"rss_total_mb":       sumOver(after, group, "rss_bytes") / (1 << 20),
		"checkpoints":        checkpoints,
		"before":             before,
		"after":              after,
	}
	if c.Target != "webstomp" {
		ph["heap_per_session_kb"] = (sumOver(after, "edge", "go_memstats_heap_inuse_bytes") - sumOver(before, "edge", "go_memstats_heap_inuse_bytes")) / n / 1024
		ph["goroutines_per_session"] = (sumOver(after, "edge", "go_goroutines") - sumOver(before, "edge", "go_goroutines")) / n
	}
	if aliveErr != nil {
		ph["first_session_error"] = aliveErr.Error()
	}
	res.Phases = append(res.Phases, ph)
	return nil
}

// ---- publishers ----------------------------------------------------------

// publisher sends message seq with body b.
type publisher interface {
	publish(ctx context.Context, seq uint64, b []byte) error
	close()
}

type grpcPublisher struct {
	conns   []*grpc.ClientConn
	clients []pushgatev1.PushServiceClient
	md      metadata.MD
	topic   string
	users   int // >0: SendToUser to user seq%users
	next    atomic.Uint64
}

func newGRPCPublisher(c *config, users int) (*grpcPublisher, error) {
	p := &grpcPublisher{md: metadata.Pairs("authorization", "Bearer "+c.APIToken), topic: c.Topic, users: users}
	for i := 0; i < 4; i++ {
		cc, err := grpc.NewClient(c.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns = append(p.conns, cc)
		p.clients = append(p.clients, pushgatev1.NewPushServiceClient(cc))
	}
	return p, nil
}

func (p *grpcPublisher) publish(ctx context.Context, seq uint64, b []byte) error {
	ctx = metadata.NewOutgoingContext(ctx, p.md)
	cl := p.clients[p.next.Add(1)%uint64(len(p.clients))]
	if p.users > 0 {
		_, err := cl.SendToUser(ctx, &pushgatev1.SendToUserRequest{
			User:        userName(int(seq % uint64(p.users))),
			Destination: "/topic/greetings",
			Payload:     &pushgatev1.SendToUserRequest_Text{Text: string(b)},
		})
		return err
	}
	_, err := cl.Broadcast(ctx, &pushgatev1.BroadcastRequest{
		Destination: p.topic,
		Payload:     &pushgatev1.BroadcastRequest_Text{Text: string(b)},
	})
	return err
}

func (p *grpcPublisher) close() {
	for _, cc := range p.conns {
		cc.Close()
	}
}

// stompPublisher sends over one STOMP TCP connection, without receipts (as
// TOOLING.md's RabbitMQ rate was measured): a writer goroutine batches
// flushes.
type stompPublisher struct {
	nc     net.Conn
	dest   string
	frames chan []byte
	done   chan struct{}
	err    atomic.Pointer[error]
}

func dialStomp(c *config) (net.Conn, *bufio.Reader, error) {
	nc, err := net.DialTimeout("tcp", c.StompAddr, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	connect := "CONNECT\naccept-version:1.2\nhost:" + c.VHost + "\nlogin:" + c.Login + "\npasscode:" + c.Passcode + "\nheart-beat:0,0\n\n\x00"
	if _, err := nc.Write([]byte(connect)); err != nil {
		nc.Close()
		return nil, nil, err
	}
	r := bufio.NewReaderSize(nc, 64<<10)
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := frame.NewReader(r).Read()
	_ = nc.SetReadDeadline(time.Time{})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if f == nil || f.Command != "CONNECTED" {
		nc.Close()
		return nil, nil, fmt.Errorf("STOMP broker answered %v", f)
	}
	return nc, r, nil
}

func newStompPublisher(c *config, dest string) (*stompPublisher, error) {
	nc, _, err := dialStomp(c)
	if err != nil {
		return nil, err
	}
	p := &stompPublisher{nc: nc, dest: dest, frames: make(chan []byte, 4096), done: make(chan struct{})}
	go p.writeLoop()
	return p, nil
}

func (p *stompPublisher) writeLoop() {
	defer close(p.done)
	w := bufio.NewWriterSize(p.nc, 64<<10)
	for f := range p.frames {
		_, err := w.Write(f)
		for more := true; more && err == nil; {
			select {
			case f, ok := <-p.frames:
				if !ok {
					more = false
					break
				}
				_, err = w.Write(f)
			default:
				more = false
			}
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			p.err.Store(&err)
			for range p.frames {
			}
			return
		}
	}
	_ = w.Flush()
}

func (p *stompPublisher) publish(ctx context.Context, seq uint64, b []byte) error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	f := make([]byte, 0, len(b)+len(p.dest)+64)
	f = append(f, "SEND\ndestination:"...)
	f = append(f, p.dest...)
	f = append(f, "\ncontent-type:text/plain\ncontent-length:"...)
	f = strconv.AppendInt(f, int64(len(b)), 10)
	f = append(f, "\n\n"...)
	f = append(f, b...)
	f = append(f, 0)
	select {
	case p.frames <- f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *stompPublisher) close() {
	close(p.frames)
	<-p.done
	p.nc.Close()
}

// ---- modes ---------------------------------------------------------------

// drive runs one mode: it sends count messages (fixed: at rate; unthrottled:
// as fast as workers go, for at most c.Duration) and returns how many were
// accepted, the error count, the acceptance latency and how long sending took.
func drive(ctx context.Context, c *config, mode string, phase int, count int, pub publisher, sent []bool) (ok, errs int64, ack *hist, took time.Duration, firstErr error) {
	ack = &hist{}
	var errMu sync.Mutex
	send := func(seq uint64) {
		t0 := time.Now()
		err := pub.publish(ctx, seq, body(c.Size, phase, seq, t0))
		if err != nil {
			if atomic.AddInt64(&errs, 1) == 1 {
				errMu.Lock()
				firstErr = err
				errMu.Unlock()
			}
			return
		}
		ack.record(time.Since(t0))
		sent[seq] = true
		atomic.AddInt64(&ok, 1)
	}
	start := time.Now()
	var wg sync.WaitGroup
	switch mode {
	case "fixed":
		jobs := make(chan uint64, 1024)
		for w := 0; w < max(c.Workers, 256); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := range jobs {
					send(seq)
				}
			}()
		}
		interval := time.Duration(float64(time.Second) / c.Rate)
		for i := 0; i < count && ctx.Err() == nil; i++ {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			jobs <- uint64(i)
		}
		close(jobs)
	case "unthrottled":
		var next atomic.Int64
		deadline := start.Add(c.Duration)
		for w := 0; w < c.Workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil && time.Now().Before(deadline) {
					i := next.Add(1) - 1
					if i >= int64(count) {
						return
					}
					send(uint64(i))
				}
			}()
		}
	default:
		firstErr = fmt.Errorf("unknown mode %q", mode)
		return
	}
	wg.Wait()
	return ok, errs, ack, time.Since(start), firstErr
}

// cpuFigures adds the CPU each watched process used, in total and in
// microseconds per unit (delivery or message).
func cpuFigures(ph map[string]any, d map[string]float64, deliveries, messages int64) {
	ph["cpu_seconds"] = d
	edges, other := 0.0, map[string]float64{}
	for name, s := range d {
		if strings.HasPrefix(name, "edge") {
			edges += s
		} else {
			other[name] += s
		}
	}
	per := func(s float64, n int64) float64 {
		if n == 0 {
			return math.NaN()
		}
		return s / float64(n) * 1e6
	}
	if edges > 0 {
		ph["edge_cpu_us_per_delivery"] = per(edges, deliveries)
	}
	for name, s := range other {
		ph[name+"_cpu_us_per_message"] = per(s, messages)
		ph[name+"_cpu_us_per_delivery"] = per(s, deliveries)
	}
}

// runModes runs every mode of c against pub; receivers are the sessions,
// perRecv says whether each receiver gets every message (fan-out).
func runModes(ctx context.Context, c *config, res *result, receivers int, perRecv bool, pub publisher, tallies *atomic.Pointer[tally]) {
	for i, mode := range c.Modes {
		phase := i + 1
		count := c.Count
		if mode == "fixed" {
			count = int(c.Rate * c.Duration.Seconds())
		}
		t := newTally(phase, receivers, count, perRecv)
		tallies.Store(t)
		sent := make([]bool, count)
		cpu0 := cpuSnapshot(c.Procs)
		start := time.Now()
		ok, errs, ack, took, firstErr := drive(ctx, c, mode, phase, count, pub, sent)
		want := ok
		if perRecv {
			want = ok * int64(receivers)
		}
		waitDelivered(ctx, t, want, c.Drain)
		cpu := cpuDelta(cpu0, cpuSnapshot(c.Procs))
		delivered := t.delivered.Load()
		span := time.Duration(t.lastNanos.Load() - start.UnixNano())
		if span <= 0 {
			span = took
		}
		ph := map[string]any{
			"mode":             mode,
			"receivers":        receivers,
			"messages_ok":      ok,
			"errors":           errs,
			"send_seconds":     took.Seconds(),
			"messages_per_s":   float64(ok) / took.Seconds(),
			"delivered":        delivered,
			"expected":         want,
			"lost":             t.missing(sent),
			"duplicates":       t.dups.Load(),
			"stray":            t.stray.Load(),
			"deliveries_per_s": float64(delivered) / span.Seconds(),
			"latency":          t.lat.summary(),
			"accept_latency":   ack.summary(),
		}
		if mode == "fixed" {
			ph["rate"] = c.Rate
		} else {
			ph["workers"] = c.Workers
		}
		if firstErr != nil {
			ph["first_error"] = firstErr.Error()
		}
		cpuFigures(ph, cpu, delivered, ok)
		res.Phases = append(res.Phases, ph)
		fmt.Fprintf(os.Stderr, "%s %s: %d sent, %d/%d delivered, %.0f deliveries/s\n", c.Scenario, mode, ok, delivered, want, ph["deliveries_per_s"])
		tallies.Store(nil)
		time.Sleep(500 * time.Millisecond)
	}
}

// ---- fanout --------------------------------------------------------------

func runFanout(ctx context.Context, c *config, res *result) error {
	var cur atomic.Pointer[tally]
	onMessage := func(i int) func([]byte) {
		return func(b []byte) {
			if t := cur.Load(); t != nil {
				t.record(i, b)
			}
		}
	}
	ss, took, err := openSessions(ctx, c, c.N, func(int) []string { return []string{c.Topic} }, onMessage, nil)
	if err != nil {
		return err
	}
	defer closeAll(ss)
	res.Phases = append(res.Phases, map[string]any{"mode": "connect", "sessions": c.N, "connect_seconds": took.Seconds()})
	var pub publisher
	switch c.Target {
	case "pushgate":
		pub, err = newGRPCPublisher(c, 0)
	case "centrifugo":
		pub = newCentrifugoPublisher(c, 0)
	default:
		pub, err = newStompPublisher(c, c.Topic)
	}
	if err != nil {
		return err
	}
	defer pub.close()
	runModes(ctx, c, res, c.N, true, pub, &cur)
	if up, err := alive(ss); up != c.N {
		return fmt.Errorf("%d of %d sessions still open at the end; first failure: %v", up, c.N, err)
	}
	return nil
}

// ---- push ----------------------------------------------------------------

// processAge returns how long pid has been running.
func processAge(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	start, _ := strconv.ParseFloat(f[19], 64) // field 22: starttime
	u, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	up, _ := strconv.ParseFloat(strings.Fields(string(u))[0], 64)
	return time.Duration((up - start/clockTicks) * float64(time.Second)), nil
}

func runPush(ctx context.Context, c *config, res *result) error {
	if c.Target == "webstomp" {
		return errors.New("push: not for web-stomp (its per-user baseline is the rawstomp scenario)")
	}
	var cur atomic.Pointer[tally]
	onMessage := func(i int) func([]byte) {
		return func(b []byte) {
			if t := cur.Load(); t != nil {
				t.record(i, b)
			}
		}
	}
	ss, took, err := openSessions(ctx, c, c.N, func(int) []string { return []string{"/user/topic/greetings"} }, onMessage, nil)
	if err != nil {
		return err
	}
	defer closeAll(ss)
	res.Phases = append(res.Phases, map[string]any{"mode": "connect", "sessions": c.N, "connect_seconds": took.Seconds(), "connects_per_s": float64(c.N) / took.Seconds()})
	// Until --registry-settle has passed, pushsvc sends every push to all
	// edges; measure the resolved path.
	for _, p := range c.Procs {
		if p.Name != "pushsvc" {
			continue
		}
		for {
			age, err := processAge(p.PID)
			if err != nil || age >= c.Settle || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var pub publisher
	if c.Target == "centrifugo" {
		pub = newCentrifugoPublisher(c, c.N)
	} else if pub, err = newGRPCPublisher(c, c.N); err != nil {
		return err
	}
	defer pub.close()
	runModes(ctx, c, res, c.N, false, pub, &cur)
	if up, err := alive(ss); up != c.N {
		return fmt.Errorf("%d of %d sessions still open at the end; first failure: %v", up, c.N, err)
	}
	return nil
}

// ---- rawstomp ------------------------------------------------------------

// runRawStomp measures the broker alone: one STOMP publisher, one
// subscriber, no receipts (TOOLING.md's "one publisher → one subscriber").
func runRawStomp(ctx context.Context, c *config, res *result) error {
	dest := "/topic/bench.raw"
	sub, r, err := dialStomp(c)
	if err != nil {
		return err
	}
	defer sub.Close()
	if _, err := sub.Write([]byte("SUBSCRIBE\nid:0\ndestination:" + dest + "\nack:auto\nreceipt:ok\n\n\x00")); err != nil {
		return err
	}
	fr := frame.NewReader(r)
	_ = sub.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.Read()
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		if f != nil && f.Command == "RECEIPT" {
			break
		}
	}
	_ = sub.SetReadDeadline(time.Time{})
	var cur atomic.Pointer[tally]
	go func() {
		for {
			f, err := fr.Read()
			if err != nil {
				return
			}
			if f != nil && f.Command == "MESSAGE" {
				if t := cur.Load(); t != nil {
					t.record(0, f.Body)
				}
			}
		}
	}()
	pub, err := newStompPublisher(c, dest)
	if err != nil {
		return err
	}
	defer pub.close()
	runModes(ctx, c, res, 1, false, pub, &cur)
	return nil
}
