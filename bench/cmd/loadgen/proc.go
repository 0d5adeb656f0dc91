package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// This file reads what the generator reports about the servers: CPU time
// and RSS from /proc/<pid>, Go runtime figures from /metrics, and broker
// connections from the process's sockets.

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux the benchmarks run on.
const clockTicks = 100

// proc is a server process the generator watches.
type proc struct {
	Name    string `json:"name"` // edge1, edge2, pushsvc, broker
	PID     int    `json:"pid"`
	Metrics string `json:"metrics,omitempty"` // its /metrics URL, when it has one
}

// cpuSeconds returns the process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields count from after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks, nil
}

// rssBytes returns the process's resident set size.
func rssBytes(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// scrape returns the unlabelled (or first-labelled) samples of the named
// metrics from a Prometheus text endpoint; labelled samples of the same
// name are summed.
func scrape(url string, names ...string) (map[string]float64, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if j := strings.IndexByte(name, '{'); j >= 0 {
			// labels may contain spaces: cut at the closing brace
			k := strings.LastIndexByte(line, '}')
			if k < 0 {
				continue
			}
			name, rest, ok = line[:j], strings.TrimSpace(line[k+1:]), true
		}
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

// tcpConnsTo counts the process's established TCP connections whose remote
// port is port: the broker connections of an edge or pushsvc.
func tcpConnsTo(pid, port int) (int, error) {
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) < 10 {
				continue
			}
			// rem_address is HEX_IP:HEX_PORT; st 01 is ESTABLISHED.
			_, rp, _ := strings.Cut(f[2], ":")
			p, _ := strconv.ParseInt(rp, 16, 32)
			if int(p) == port && f[3] == "01" && inodes[f[9]] {
				n++
			}
		}
	}
	return n, nil
}

// usage is a CPU snapshot of every watched process.
type usage map[string]float64

func cpuSnapshot(procs []proc) usage {
	u := usage{}
	for _, p := range procs {
		if s, err := cpuSeconds(p.PID); err == nil {
			u[p.Name] = s
		}
	}
	return u
}

// cpuDelta returns the CPU seconds each process used between a and b.
func cpuDelta(a, b usage) map[string]float64 {
	d := map[string]float64{}
	for k, v := range b {
		d[k] = v - a[k]
	}
	return d
}
