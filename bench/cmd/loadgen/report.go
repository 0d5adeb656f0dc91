package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// This file prints results as Markdown tables, and, from many result files
// of one run, the ratios the goals are stated in.

func num(m map[string]any, k string) float64 {
	switch v := m[k].(type) {
	case float64:
		return v
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case latency:
		return 0
	}
	return math.NaN()
}

func lat(m map[string]any, k string) latency {
	switch v := m[k].(type) {
	case latency:
		return v
	case map[string]any:
		return latency{P50: num(v, "p50_ms"), P99: num(v, "p99_ms"), P999: num(v, "p999_ms"), Max: num(v, "max_ms"), Count: uint64(num(v, "count"))}
	}
	return latency{}
}

func f0(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}

func f1(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	if v != 0 && math.Abs(v) < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func printTable(w io.Writer, results []*result) {
	var conns, flows [][]string
	for _, r := range results {
		c := r.Config
		for _, ph := range r.Phases {
			switch ph["mode"] {
			case "idle":
				cps := ""
				if list, ok := ph["checkpoints"].([]any); ok {
					for _, x := range list {
						cps += checkpointCell(x.(map[string]any))
					}
				} else if list, ok := ph["checkpoints"].([]map[string]any); ok {
					for _, x := range list {
						cps += checkpointCell(x)
					}
				}
				conns = append(conns, []string{c.Label, c.Transport, f0(num(ph, "sessions")), f0(num(ph, "sessions_alive")),
					f1(num(ph, "connect_seconds")), f0(num(ph, "connects_per_s")),
					f1(num(ph, "rss_per_session_kb")), f1(num(ph, "heap_per_session_kb")), f1(num(ph, "goroutines_per_session")), strings.TrimSpace(cps)})
			case "fixed", "unthrottled":
				l := lat(ph, "latency")
				rate := "max"
				if ph["mode"] == "fixed" {
					rate = f0(num(ph, "rate")) + "/s"
				}
				flows = append(flows, []string{c.Label, c.Scenario, c.Transport, f0(float64(c.N)), rate,
					f0(num(ph, "messages_per_s")), f0(num(ph, "deliveries_per_s")),
					f1(l.P50), f1(l.P99), f1(l.P999), f1(l.Max),
					fmt.Sprintf("%s/%s/%s", f0(num(ph, "lost")), f0(num(ph, "duplicates")), f0(num(ph, "errors"))),
					f1(num(ph, "edge_cpu_us_per_delivery")), f1(num(ph, "pushsvc_cpu_us_per_message")), f1(num(ph, "broker_cpu_us_per_message")), f1(num(ph, "broker_cpu_us_per_delivery"))})
			}
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "\n**%s %s: error:** %s\n", c.Label, c.Scenario, e)
		}
	}
	if len(conns) > 0 {
		fmt.Fprintln(w)
		md(w, []string{"system", "transport", "sessions", "alive", "connect s", "connects/s", "RSS KB/session", "Go heap KB/session", "goroutines/session", "at N sessions: broker conns / subscriptions per edge (/ broker queues)"}, conns)
	}
	if len(flows) > 0 {
		fmt.Fprintln(w)
		md(w, []string{"system", "scenario", "transport", "sessions", "rate", "msgs/s", "deliveries/s", "p50 ms", "p99 ms", "p999 ms", "max ms", "lost/dup/err", "edge µs/delivery", "pushsvc µs/msg", "broker µs/msg", "broker µs/delivery"}, flows)
	}
}

func checkpointCell(cp map[string]any) string {
	var parts []string
	keys := make([]string, 0, len(cp))
	for k := range cp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	conns, subs := []string{}, []string{}
	for _, k := range keys {
		if strings.HasSuffix(k, "_broker_connections") {
			conns = append(conns, f0(num(cp, k)))
		}
		if strings.HasSuffix(k, "_broker_subscriptions") {
			subs = append(subs, f0(num(cp, k)))
		}
	}
	if len(conns) == 0 {
		return ""
	}
	q := ""
	if _, ok := cp["broker_queues"]; ok {
		q = " / " + f0(num(cp, "broker_queues")) + " queues"
	}
	parts = append(parts, fmt.Sprintf("%s: %s / %s%s;", f0(num(cp, "sessions")), strings.Join(conns, ","), strings.Join(subs, ","), q))
	return strings.Join(parts, " ") + " "
}

func md(w io.Writer, head []string, rows [][]string) {
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat(" --- |", len(head)))
	for _, r := range rows {
		fmt.Fprintln(w, "| "+strings.Join(r, " | ")+" |")
	}
}

func reportCmd(files []string) error {
	var results []*result
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		results = append(results, &r)
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Started.Before(results[j].Started) })
	printTable(os.Stdout, results)
	printGoals(os.Stdout, results)
	printCompare(os.Stdout, results)
	return nil
}

// find returns the first phase of label's scenario in mode (any N when n is 0).
func find(results []*result, label, scenario, mode string, n int) map[string]any {
	for _, r := range results {
		if r.Config.Label != label || r.Config.Scenario != scenario || (n != 0 && r.Config.N != n) {
			continue
		}
		for _, ph := range r.Phases {
			if ph["mode"] == mode {
				return ph
			}
		}
	}
	return nil
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// printGoals prints the goals as ratios of figures from these
// results (labels as bench/run.sh writes them). Centrifugo's figures come
// from the same run when it was measured (label centrifugo), else from the
// issue (marked so).
func printGoals(w io.Writer, results []*result) {
	var rows [][]string
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	cf := func(scenario, mode string, n int) map[string]any {
		return find(results, "centrifugo", scenario, mode, n)
	}
	for _, pg := range []string{"pushgate-rabbitmq", "pushgate-embedded"} {
		for _, n := range []int{10000, 0} {
			p := find(results, pg, "conns", "idle", n)
			if p == nil {
				continue
			}
			n = int(num(p, "sessions"))
			ws := find(results, "webstomp", "conns", "idle", n)
			kb := num(p, "rss_per_session_kb")
			if ws != nil {
				r := kb / num(ws, "rss_per_session_kb")
				rows = append(rows, []string{fmt.Sprintf("idle RSS per session at %d, %s vs web-stomp (≤ 0.15×)", n, pg),
					f1(kb) + " KB", f1(num(ws, "rss_per_session_kb")) + " KB", fmt.Sprintf("%.2f×", r), verdict(r <= 0.15)})
			}
			if c := cf("conns", "idle", n); c != nil {
				r := kb / num(c, "rss_per_session_kb")
				rows = append(rows, []string{fmt.Sprintf("idle RSS per session at %d, %s vs Centrifugo (≤ 0.5×)", n, pg),
					f1(kb) + " KB", f1(num(c, "rss_per_session_kb")) + " KB", fmt.Sprintf("%.2f×", r), verdict(r <= 0.5)})
			} else {
				rows = append(rows, []string{fmt.Sprintf("idle RSS per session at %d, %s vs Centrifugo (≤ 0.5×)", n, pg),
					f1(kb) + " KB", "42–55 KB (issue)", fmt.Sprintf("%.2f–%.2f×", kb/55, kb/42), rangeVerdict(kb/42 <= 0.5, kb/55 <= 0.5)})
			}
			if pg == "pushgate-rabbitmq" {
				ref, refs := "17–20 s (issue)", ""
				if ws != nil {
					ref = f1(num(ws, "connect_seconds")) + " s (web-stomp)"
				}
				if c := cf("conns", "idle", n); c != nil {
					refs = "; Centrifugo " + f1(num(c, "connect_seconds")) + " s"
				}
				rows = append(rows, []string{fmt.Sprintf("connect storm through RabbitMQ, %d sessions (≤ 2 s)", n),
					f1(num(p, "connect_seconds")) + " s", ref + refs, "", verdict(n >= 10000 && num(p, "connect_seconds") <= 2)})
				if list, ok := p["checkpoints"].([]any); ok {
					cells := ""
					for _, x := range list {
						cells += checkpointCell(x.(map[string]any))
					}
					rows = append(rows, []string{"broker connections / subscriptions per edge (/ broker queues) as sessions grow (constant)", strings.TrimSpace(cells), "", "", ""})
				}
			}
			break
		}
	}
	for _, pg := range []string{"pushgate-rabbitmq", "pushgate-embedded"} {
		for _, n := range []int{1000, 10000} {
			p := find(results, pg, "fanout", "unthrottled", n)
			if p == nil {
				continue
			}
			d := num(p, "deliveries_per_s")
			if ws := find(results, "webstomp", "fanout", "unthrottled", n); ws != nil {
				r := d / num(ws, "deliveries_per_s")
				rows = append(rows, []string{fmt.Sprintf("fan-out to %d, deliveries/s, %s vs web-stomp (≥ 10×)", n, pg),
					f0(d), f0(num(ws, "deliveries_per_s")), fmt.Sprintf("%.1f×", r), verdict(r >= 10)})
			}
			if c := cf("fanout", "unthrottled", n); c != nil {
				r := d / num(c, "deliveries_per_s")
				rows = append(rows, []string{fmt.Sprintf("fan-out to %d, deliveries/s, %s vs Centrifugo (≥ 1×)", n, pg),
					f0(d), f0(num(c, "deliveries_per_s")), fmt.Sprintf("%.2f×", r), verdict(r >= 1)})
				e, ce := num(p, "edge_cpu_us_per_delivery"), num(c, "edge_cpu_us_per_delivery")
				rows = append(rows, []string{fmt.Sprintf("fan-out to %d, edge CPU per delivery (unthrottled), %s vs Centrifugo (≤)", n, pg),
					f1(e) + " µs", f1(ce) + " µs", ratio(e, ce), verdict(e <= ce)})
				if pf, cfx := find(results, pg, "fanout", "fixed", n), cf("fanout", "fixed", n); pf != nil && cfx != nil {
					a, b := lat(pf, "latency").P99, lat(cfx, "latency").P99
					rows = append(rows, []string{fmt.Sprintf("fan-out to %d at %s msgs/s, p99, %s vs Centrifugo (no worse)", n, f0(num(pf, "rate")), pg),
						f1(a) + " ms", f1(b) + " ms", ratio(a, b), verdict(a <= b)})
					e, ce := num(pf, "edge_cpu_us_per_delivery"), num(cfx, "edge_cpu_us_per_delivery")
					rows = append(rows, []string{fmt.Sprintf("fan-out to %d at %s msgs/s, edge CPU per delivery, %s vs Centrifugo (≤)", n, f0(num(pf, "rate")), pg),
						f1(e) + " µs", f1(ce) + " µs", ratio(e, ce), verdict(e <= ce)})
				}
			} else {
				rows = append(rows, []string{fmt.Sprintf("fan-out to %d, deliveries/s, %s vs Centrifugo (≥ 1×)", n, pg),
					f0(d), "200–370k (issue)", fmt.Sprintf("%.2f–%.2f×", d/370000, d/200000), rangeVerdict(d >= 370000, d >= 200000)})
			}
			bad := num(p, "lost") + num(p, "duplicates")
			if f := find(results, pg, "fanout", "fixed", n); f != nil {
				bad += num(f, "lost") + num(f, "duplicates")
			}
			rows = append(rows, []string{fmt.Sprintf("fan-out to %d, %s: lost + duplicated, both modes (0)", n, pg), f0(bad), "", "", verdict(bad == 0)})
		}
	}
	raw := find(results, "rabbitmq-stomp", "rawstomp", "unthrottled", 0)
	for _, pg := range []string{"pushgate-rabbitmq", "pushgate-embedded"} {
		p := find(results, pg, "push", "unthrottled", 0)
		if p == nil {
			continue
		}
		rate := num(p, "messages_per_s")
		if pg == "pushgate-rabbitmq" && raw != nil {
			r := rate / num(raw, "deliveries_per_s")
			rows = append(rows, []string{"per-user push through RabbitMQ vs RabbitMQ's own 1→1 STOMP rate (≥ 0.8×)",
				f0(rate) + "/s", f0(num(raw, "deliveries_per_s")) + "/s", fmt.Sprintf("%.2f×", r), verdict(r >= 0.8)})
		}
		if pg == "pushgate-embedded" {
			if c := cf("push", "unthrottled", 0); c != nil {
				r := rate / num(c, "messages_per_s")
				rows = append(rows, []string{"per-user push, embedded broker, vs Centrifugo (≥ 1×)",
					f0(rate) + "/s", f0(num(c, "messages_per_s")) + "/s", fmt.Sprintf("%.2f×", r), verdict(r >= 1)})
			} else {
				rows = append(rows, []string{"per-user push, embedded broker, vs Centrifugo (≥ 1×)",
					f0(rate) + "/s", "~22000/s (issue)", ratio(rate, 22000), verdict(rate >= 22000)})
			}
		}
		if f := find(results, pg, "push", "fixed", 0); f != nil && pg == "pushgate-rabbitmq" {
			p99 := lat(f, "latency").P99
			rows = append(rows, []string{fmt.Sprintf("per-user push through RabbitMQ, p99 at %s/s (≤ 5 ms; achieved %s/s)", f0(num(f, "rate")), f0(num(f, "messages_per_s"))),
				f1(p99) + " ms", "5 ms", "", verdict(p99 <= 5 && num(f, "messages_per_s") >= 0.98*num(f, "rate"))})
		}
		errs := num(p, "errors") + num(p, "lost") + num(p, "duplicates")
		rows = append(rows, []string{"per-user push, " + pg + ": errors + lost + duplicated, unthrottled", f0(errs), "", "", verdict(errs == 0)})
	}
	if len(rows) > 0 {
		fmt.Fprintln(w)
		md(w, []string{"goal", "pushgate", "reference (same run unless marked)", "ratio", "verdict"}, rows)
	}
}

// rangeVerdict judges a goal against a reference range from the issue:
// met over the whole range, or only against its favourable end.
func rangeVerdict(whole, part bool) string {
	switch {
	case whole:
		return "met"
	case part:
		return "met against part of the range"
	}
	return "not met"
}

// printCompare prints before/after figures where a run measured both the
// base binary (labels base-*) and the current one.
func printCompare(w io.Writer, results []*result) {
	var rows [][]string
	type metric struct{ key, name string }
	add := func(label, what string, a, b map[string]any, ms []metric) {
		if a == nil || b == nil {
			return
		}
		for _, m := range ms {
			var va, vb float64
			if strings.HasPrefix(m.key, "latency.") {
				q := strings.TrimPrefix(m.key, "latency.")
				la, lb := lat(a, "latency"), lat(b, "latency")
				switch q {
				case "p50":
					va, vb = la.P50, lb.P50
				case "p99":
					va, vb = la.P99, lb.P99
				}
			} else {
				va, vb = num(a, m.key), num(b, m.key)
			}
			rows = append(rows, []string{label, what, m.name, f1(va), f1(vb), ratio(vb, va)})
		}
	}
	for _, l := range []string{"pushgate-embedded", "pushgate-rabbitmq"} {
		for _, n := range []int{1000, 10000, 50000} {
			add(l, fmt.Sprintf("conns %d", n), find(results, "base-"+l, "conns", "idle", n), find(results, l, "conns", "idle", n), []metric{
				{"rss_per_session_kb", "RSS KB/session"}, {"heap_per_session_kb", "Go heap KB/session"}, {"connect_seconds", "connect s"}})
			for _, mode := range []string{"fixed", "unthrottled"} {
				add(l, fmt.Sprintf("fanout %d %s", n, mode), find(results, "base-"+l, "fanout", mode, n), find(results, l, "fanout", mode, n), []metric{
					{"deliveries_per_s", "deliveries/s"}, {"latency.p50", "p50 ms"}, {"latency.p99", "p99 ms"}, {"edge_cpu_us_per_delivery", "edge µs/delivery"}})
				add(l, fmt.Sprintf("push %d %s", n, mode), find(results, "base-"+l, "push", mode, n), find(results, l, "push", mode, n), []metric{
					{"messages_per_s", "pushes/s"}, {"latency.p50", "p50 ms"}, {"latency.p99", "p99 ms"}, {"edge_cpu_us_per_delivery", "edge µs/delivery"},
					{"pushsvc_cpu_us_per_message", "pushsvc µs/push"}, {"broker_cpu_us_per_message", "broker µs/push"}})
			}
		}
	}
	if len(rows) > 0 {
		fmt.Fprintln(w)
		md(w, []string{"system", "scenario", "figure", "before (base)", "after", "after/before"}, rows)
	}
}
