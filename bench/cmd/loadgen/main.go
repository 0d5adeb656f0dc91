// Command loadgen is pushgate's load generator. It opens many STOMP sessions
// (over WebSocket, SockJS websocket or SockJS xhr-streaming) to pushgate
// edges or to RabbitMQ's web-stomp, drives pushes through pushsvc's gRPC API
// or a raw STOMP publisher, and measures what the servers cost: RSS and CPU
// from /proc/<pid>, Go heap and goroutines from /metrics, broker connections
// from the edges' sockets. Every run is bounded in time and count, prints a
// table and writes JSON.
//
//	loadgen run -scenario conns|fanout|push|rawstomp [flags]
//	loadgen report results/*.json     # one table, with ratios, from many runs
//
// bench/run.sh starts the servers and calls it; see bench/RESULTS.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config holds the flags of a run.
type config struct {
	Scenario   string   `json:"scenario"`
	Target     string   `json:"target"` // pushgate | webstomp | stomp
	Label      string   `json:"label"`
	Transport  string   `json:"transport"`
	URLs       []string `json:"urls"`
	JWTSecret  string   `json:"-"`
	GRPC       string   `json:"grpc,omitempty"`
	APIToken   string   `json:"-"`
	StompAddr  string   `json:"stomp_addr,omitempty"`
	Login      string   `json:"-"`
	Passcode   string   `json:"-"`
	VHost      string   `json:"-"`
	Procs      []proc   `json:"procs"`
	BrokerPort int      `json:"broker_port,omitempty"`

	N           int           `json:"n"`
	Concurrency int           `json:"connect_concurrency"`
	Checkpoints []int         `json:"checkpoints,omitempty"`
	Idle        time.Duration `json:"idle"`
	StormTopic  string        `json:"storm_topic,omitempty"`
	Topic       string        `json:"topic,omitempty"`

	Modes    []string      `json:"modes"`
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	Count    int           `json:"count"`
	Workers  int           `json:"workers"`
	Size     int           `json:"size"`
	Drain    time.Duration `json:"drain"`
	Settle   time.Duration `json:"settle"`
	LocalIPs int           `json:"local_ips"`
	Out      string        `json:"-"`
	// QueuesCmd, run by sh at each conns checkpoint, prints the broker's
	// queue count (rabbitmqctl list_queues | wc -l).
	QueuesCmd string `json:"queues_cmd,omitempty"`
	// CentrifugoAPI is Centrifugo's HTTP API base URL (-target centrifugo).
	CentrifugoAPI string `json:"centrifugo_api,omitempty"`
}

// result is what one run writes.
type result struct {
	Config  config           `json:"config"`
	Started time.Time        `json:"started"`
	Host    map[string]any   `json:"host"`
	Phases  []map[string]any `json:"phases"`
	Errors  []string         `json:"errors,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen run [flags] | loadgen report FILE...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type procFlag []proc

func (p *procFlag) String() string { return fmt.Sprint(*p) }

// Set parses name=pid or name=pid@http://host/metrics.
func (p *procFlag) Set(s string) error {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want name=pid[@metrics-url], got %q", s)
	}
	pidS, murl, _ := strings.Cut(rest, "@")
	pid, err := strconv.Atoi(pidS)
	if err != nil {
		return err
	}
	*p = append(*p, proc{Name: name, PID: pid, Metrics: murl})
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runCmd(args []string) error {
	var c config
	var procs procFlag
	fs := flag.NewFlagSet("loadgen run", flag.ContinueOnError)
	fs.StringVar(&c.Scenario, "scenario", "conns", "conns, fanout, push or rawstomp")
	fs.StringVar(&c.Target, "target", "pushgate", "pushgate, webstomp (RabbitMQ's web-stomp), centrifugo, or stomp (rawstomp's broker)")
	fs.StringVar(&c.Label, "label", "", "name of the system under test in tables (default: target)")
	fs.StringVar(&c.Transport, "transport", "ws", "ws, sockjs-ws or sockjs-xhr-streaming")
	urls := fs.String("urls", "ws://127.0.0.1:18081/stomp,ws://127.0.0.1:18082/stomp", "session URLs, comma-separated; sessions alternate between them (SockJS: http://host:port/ws)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "bench-secret", "HS256 secret of the edges (pushgate)")
	fs.StringVar(&c.GRPC, "grpc", "127.0.0.1:19090", "pushsvc gRPC address (pushgate)")
	fs.StringVar(&c.APIToken, "api-token", "bench-token", "pushsvc API token")
	fs.StringVar(&c.StompAddr, "stomp-addr", "127.0.0.1:61613", "STOMP TCP address: the publisher of webstomp runs and rawstomp")
	fs.StringVar(&c.Login, "login", "guest", "STOMP login (webstomp, rawstomp)")
	fs.StringVar(&c.Passcode, "passcode", "guest", "STOMP passcode (webstomp, rawstomp)")
	fs.StringVar(&c.VHost, "vhost", "/", "STOMP host header (webstomp, rawstomp)")
	fs.Var(&procs, "proc", "a server process to measure: name=pid[@http://host:port/metrics]; repeat (names edge*, pushsvc, broker)")
	fs.IntVar(&c.BrokerPort, "broker-port", 61613, "broker port, to count each edge's broker connections")
	fs.IntVar(&c.N, "n", 1000, "sessions")
	fs.IntVar(&c.Concurrency, "connect-concurrency", 500, "sessions being opened at once")
	checkpoints := fs.String("checkpoints", "100,1000,10000,50000", "conns: session counts at which broker connections and subscriptions are reported")
	fs.DurationVar(&c.Idle, "idle", 5*time.Second, "conns: how long sessions stay idle before memory is read")
	fs.StringVar(&c.StormTopic, "storm-topic", "/topic/bench.storm", "conns: a /topic/ every session also subscribes to (empty: none)")
	fs.StringVar(&c.Topic, "topic", "/topic/bench.fanout", "fanout: the topic")
	modes := fs.String("modes", "fixed,unthrottled", "fanout, push: fixed (at -rate for -duration) and/or unthrottled (-workers in a closed loop, -count or -duration)")
	fs.Float64Var(&c.Rate, "rate", 100, "fixed mode: messages per second")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "length of each mode")
	fs.IntVar(&c.Count, "count", 100000, "unthrottled mode: most messages")
	fs.IntVar(&c.Workers, "workers", 64, "unthrottled mode: concurrent publishers")
	fs.IntVar(&c.Size, "size", 64, "message body bytes")
	fs.DurationVar(&c.Drain, "drain", 15*time.Second, "longest wait for outstanding deliveries after a mode")
	fs.DurationVar(&c.Settle, "settle", 8*time.Second, "push: wait until pushsvc has run this long (its --registry-settle) before pushing")
	fs.IntVar(&c.LocalIPs, "local-ips", 0, "spread client sockets over 127.0.0.1..127.0.0.N (more than ~28k sessions per port); 0: automatic")
	fs.StringVar(&c.CentrifugoAPI, "centrifugo-api", "http://127.0.0.1:18000", "centrifugo: its HTTP API base URL (publishing, with -api-token as the API key)")
	fs.StringVar(&c.QueuesCmd, "queues-cmd", "", "conns: shell command printing the broker's queue count, run at each checkpoint")
	fs.StringVar(&c.Out, "out", "", "JSON result file (default: bench/results/<label>-<scenario>-<time>.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.URLs = splitList(*urls)
	c.Modes = splitList(*modes)
	c.Procs = procs
	for _, s := range splitList(*checkpoints) {
		if v, err := strconv.Atoi(s); err == nil && v < c.N {
			c.Checkpoints = append(c.Checkpoints, v)
		}
	}
	c.Checkpoints = append(c.Checkpoints, c.N)
	if c.Label == "" {
		c.Label = c.Target
	}
	if c.LocalIPs == 0 {
		c.LocalIPs = 1 + c.N/(20000*max(1, len(c.URLs)))
	}
	if c.Out == "" {
		c.Out = fmt.Sprintf("bench/results/%s-%s-%s.json", c.Label, c.Scenario, time.Now().Format("20060102-150405"))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := &result{Config: c, Started: time.Now().UTC(), Host: hostInfo()}
	var err error
	switch c.Scenario {
	case "conns":
		err = runConns(ctx, &c, res)
	case "fanout":
		err = runFanout(ctx, &c, res)
	case "push":
		err = runPush(ctx, &c, res)
	case "rawstomp":
		err = runRawStomp(ctx, &c, res)
	default:
		err = fmt.Errorf("unknown scenario %q", c.Scenario)
	}
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	printTable(os.Stdout, []*result{res})
	if werr := writeJSON(c.Out, res); werr != nil {
		return errors.Join(err, werr)
	}
	fmt.Printf("wrote %s\n", c.Out)
	return err
}

func writeJSON(path string, v any) error {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		if err := os.MkdirAll(path[:i], 0o755); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func hostInfo() map[string]any {
	h := map[string]any{}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "processor") {
				n++
			}
			if v, ok := strings.CutPrefix(line, "model name"); ok && h["cpu"] == nil {
				h["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			}
		}
		h["cpus"] = n
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		h["loadavg_at_start"] = strings.TrimSpace(string(b))
	}
	if name, err := os.Hostname(); err == nil {
		h["hostname"] = name
	}
	return h
}
