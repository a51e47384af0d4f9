package main

import (
	"fmt"
	"strings"
)

// target is one of the performance targets of the report's Targets
// table, judged on the medians of this run.
type target struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // met, missed, or not measured
}

const (
	targetMet     = "met"
	targetMissed  = "missed"
	targetUnknown = "not measured"
)

// median is the median of a figure's path in a table, if measured.
func (r *report) median(tableKey, figKey, pathKey string) (float64, bool) {
	for _, t := range r.Tables {
		if t.Key != tableKey {
			continue
		}
		for _, f := range t.Figures {
			if f.Key != figKey {
				continue
			}
			if s := f.side(pathKey); s != nil && s.ok() {
				return s.Median, true
			}
		}
	}
	return 0, false
}

// evalTargets judges every target; call after finish.
func (r *report) evalTargets(rtt float64) {
	r.Targets = nil
	add := func(goal string, ok bool, met bool, measured string) {
		st := targetUnknown
		if ok {
			st = targetMissed
			if met {
				st = targetMet
			}
		}
		r.Targets = append(r.Targets, target{goal, measured, st})
	}
	// compare judges num ÷ den against want in a table: at least want,
	// or at most want for lower-is-better figures.
	compare := func(table, goal, fig, num, den string, want float64, unit, format string, atMost bool) {
		a, okA := r.median(table, fig, num)
		b, okB := r.median(table, fig, den)
		ok := okA && okB && b > 0
		m := ""
		if ok {
			m = fmt.Sprintf("%.2f× ("+format+" vs "+format+" %s)", a/b, a, b, unit)
		}
		met := ok && a/b >= want
		if atMost {
			met = ok && a/b <= want
		}
		add(goal, ok, met, m)
	}
	ratio := func(goal, fig, num, den string, want float64, unit string) {
		compare("loopback", goal, fig, num, den, want, unit, "%.0f", false)
	}
	atMost := func(goal, fig, num, den string, want float64, unit string) {
		compare("loopback", goal, fig, num, den, want, unit, "%.3g", true)
	}
	atMost("Direct mode CPU per GiB down ≤ 1.1× plain CONNECT", "download_cpu_client_s_per_gib", pathPorthole, pathPlain, 1.1, "s")
	atMost("Direct mode CPU per GiB up ≤ 1.1× plain CONNECT", "upload_cpu_client_s_per_gib", pathPorthole, pathPlain, 1.1, "s")
	ratio("Direct mode single-stream download ≥ 0.95× plain CONNECT", "download_mbps", pathPorthole, pathPlain, 0.95, "MB/s")
	ratio("Direct mode 8-stream download ≥ 0.95× plain CONNECT", "parallel8_download_mbps", pathPorthole, pathPlain, 0.95, "MB/s")
	ratio("Direct mode 64-stream download ≥ 0.95× plain CONNECT", "parallel64_download_mbps", pathPorthole, pathPlain, 0.95, "MB/s")
	ratio("Direct mode upload ≥ 0.95× plain CONNECT", "upload_mbps", pathPorthole, pathPlain, 0.95, "MB/s")
	ratio("New tunneled connections/s (sequential) ≥ 0.8× direct mode", "seq_conn_per_sec", pathTunnel, pathPorthole, 0.8, "conn/s")
	atMost("Tunneled connection setup p50 ≤ 1.3× direct mode", "seq_conn_p50_ms", pathTunnel, pathPorthole, 1.3, "ms")
	ratio("Tunnel single-stream download ≥ 1.5× smux-ws", "download_mbps", pathTunnel, pathSmux, 1.5, "MB/s")
	ratio("Tunnel single-stream upload ≥ 1.5× smux-ws", "upload_mbps", pathTunnel, pathSmux, 1.5, "MB/s")
	ratio("Tunnel single-stream download ≥ 50% of porthole direct", "download_mbps", pathTunnel, pathPorthole, 0.5, "MB/s")
	ratio("Tunnel single-stream upload ≥ 50% of porthole direct", "upload_mbps", pathTunnel, pathPorthole, 0.5, "MB/s")
	ratio("Tunnel 64-stream aggregate ≥ 1.5× smux-ws", "parallel64_download_mbps", pathTunnel, pathSmux, 1.5, "MB/s")

	a, okA := r.median("rtt", "rtt_download_mbps", pathRTTAuto)
	b, okB := r.median("rtt", "rtt_download_mbps", pathRTTYamux)
	m := ""
	if okA && okB && b > 0 {
		m = fmt.Sprintf("%.1f× (%.1f vs %.1f MB/s)", a/b, a, b)
	}
	add(fmt.Sprintf("At %.0f ms RTT, tunnel single-stream download ≥ 10× yamux-ws (default 256 KiB window)", rtt),
		okA && okB && b > 0, okA && okB && b > 0 && a/b >= 10, m)

	plain, ok := r.median("rtt", "rtt_plain_get_first_byte_p50_ms", pathRTTAuto)
	var refs []string
	for _, k := range []string{pathRTTYamux, pathRTTSmux} {
		if v, ok := r.median("rtt", "rtt_connect_get_first_byte_p50_ms", k); ok {
			refs = append(refs, fmt.Sprintf("%s %.0f ms = %.1f RTT", strings.TrimPrefix(k, "rtt_"), v, v/rtt))
		}
	}
	m = ""
	if ok {
		m = fmt.Sprintf("plain GET first byte %.1f ms = %.2f RTT", plain, plain/rtt)
		if v, ok := r.median("rtt", "rtt_connect_get_first_byte_p50_ms", pathRTTAuto); ok {
			m += fmt.Sprintf(", CONNECT then GET %.1f ms = %.2f RTT", v, v/rtt)
		}
		m += "; references (CONNECT, then GET): " + strings.Join(refs, ", ")
	}
	add("Setup latency of client-speaks-first traffic ≈ 1 RTT (≤ 1.5 RTT), where the references need 2", ok, ok && plain <= 1.5*rtt, m)

	upper := func(goal, fig, pathKey string, limit float64, unit string) {
		v, ok := r.median("loopback", fig, pathKey)
		add(goal, ok, ok && v <= limit, fmt.Sprintf("%.2f %s", v, unit))
	}
	upper("Head-of-line: tunnel echo p99 under 4 bulk streams ≤ 5 ms", "hol_echo_p99_ms", pathTunnel, 5, "ms")
	atMost("Head-of-line: tunnel echo p99 under 4 bulk streams ≤ direct TCP's", "hol_echo_p99_ms", pathTunnel, pathDirect, 1, "ms")
	v, ok := r.median("loopback", "stall_download_ratio", pathTunnel)
	add("A stalled stream in the tunnel costs the download beside it ≤ 10 % (≥ 0.9× alone)", ok, ok && v >= 0.9, fmt.Sprintf("%.2f×", v))
	upper("Idle tunneled connection ≤ 10 KiB RSS on the client (10,000 idle)", "idle10k_rss_client_kib_per_conn", pathTunnel, 10, "KiB")
	upper("Idle tunneled connection ≤ 10 KiB RSS on the exit (10,000 idle)", "idle10k_rss_exit_kib_per_conn", pathTunnel, 10, "KiB")
	upper(fmt.Sprintf("Idle direct-mode connection ≤ 10 KiB RSS (%s idle: 10,000 or what the open-file limit allows)", thousands(idleMostOneProcess())),
		"idle10k_rss_client_kib_per_conn", pathPorthole, 10, "KiB")

	compare("rules", "New connections/s in rules mode with 100,000 rules ≥ 0.95× direct mode",
		"seq_conn_per_sec", pathRules100k, pathRulesDirect, 0.95, "conn/s", "%.0f", false)

	v, ok = r.median("loopback", "conc_conn_per_sec", pathTunnel)
	add("New tunneled connections ≥ 5,000/s (32 workers)", ok, ok && v >= 5000, fmt.Sprintf("%.0f conn/s", v))

	for _, c := range []struct{ fig, what string }{{"attr_seq_conn_per_sec", "sequential"}, {"attr_conc_conn_per_sec", "32 workers"}} {
		compare("attribution", "New connections/s with attribution on ≥ 0.95× off ("+c.what+")",
			c.fig, pathAttrOn, pathAttrOff, 0.95, "conn/s", "%.0f", false)
	}
	for i := range r.Targets {
		if r.Targets[i].Status == targetUnknown {
			r.Targets[i].Measured = "–"
		}
	}
}

func (r *report) targetsMarkdown(b *strings.Builder) {
	if len(r.Targets) == 0 {
		return
	}
	met := 0
	for _, t := range r.Targets {
		if t.Status == targetMet {
			met++
		}
	}
	fmt.Fprintf(b, "\n## Targets\n\n%d of %d met in this run (medians; ratios from figures of the same run).\n\n", met, len(r.Targets))
	b.WriteString("| target | measured | |\n|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(b, "| %s | %s | %s |\n", t.Goal, t.Measured, t.Status)
	}
}
