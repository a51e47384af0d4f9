package main

import (
	"fmt"
	"slices"
)

// mainExperiments are the figures of the loopback table, in order.
func mainExperiments(t *table, rep *report, o options, prof *profiler) []experiment {
	connFigures := func(key, name string) []*figure {
		return []*figure{
			t.fig(key+"_per_sec", name+": rate", "conn/s", "%.0f", true),
			t.fig(key+"_p50_ms", name+": latency p50", "ms", "%.3f", false),
			t.fig(key+"_p99_ms", name+": latency p99", "ms", "%.3f", false),
		}
	}
	one := func(v float64, err error) ([]float64, error) { return []float64{v}, err }
	three := func(a, b, c float64, err error) ([]float64, error) { return []float64{a, b, c}, err }
	two := func(a, b float64, err error) ([]float64, error) { return []float64{a, b}, err }
	proxies := []string{pathPlain, pathPorthole, pathTunnel, pathYamux, pathSmux}
	tunnels := []string{pathTunnel, pathYamux, pathSmux}
	// With CPU time: the value, then CPU s/GiB of the client and the exit.
	withCPU := func(p path, n int64, measure func() (float64, error)) ([]float64, error) {
		m, err := startCPU(p.procs)
		if err != nil {
			return nil, err
		}
		v, err := measure()
		if err != nil {
			return nil, err
		}
		cpu, err := m.perGiB(n)
		if err != nil {
			return nil, err
		}
		cpu = append(cpu, 0, 0) // n/a sides are ignored
		return []float64{v, cpu[0], cpu[1]}, nil
	}
	cpuFigs := func(key, name string) []*figure {
		return []*figure{
			t.fig(key+"_cpu_client_s_per_gib", "CPU per GiB, "+name+": client", "s", "%.2f", false, proxies...),
			t.fig(key+"_cpu_exit_s_per_gib", "CPU per GiB, "+name+": exit / server", "s", "%.2f", false, tunnels...),
		}
	}
	// 10,000 idle connections in porthole direct mode are 20,000
	// descriptors in one process: under a lower open-file limit its last
	// step is the most the limit allows (idleMostOneProcess). The plain
	// proxy's io.Copy holds a splice pipe per direction besides (6
	// descriptors per idle connection): it stops at 2,000.
	idleClient10k := tunnels
	if idleMostOneProcess() >= idleSteps[0] {
		idleClient10k = append([]string{pathPorthole}, tunnels...)
	}
	return []experiment{
		{
			name:    "download",
			figures: append([]*figure{t.fig("download_mbps", "Single-stream download", "MB/s", "%.0f", true)}, cpuFigs("download", "download")...),
			run: func(p path) ([]float64, error) {
				return withCPU(p, o.size, func() (float64, error) { return download(p.dial, o.size) })
			},
		},
		{
			name:    "upload",
			figures: append([]*figure{t.fig("upload_mbps", "Single-stream upload", "MB/s", "%.0f", true)}, cpuFigs("upload", "upload")...),
			run: func(p path) ([]float64, error) {
				return withCPU(p, o.size, func() (float64, error) { return upload(p.dial, o.size) })
			},
		},
		{
			name:    "parallel download",
			figures: []*figure{t.fig("parallel8_download_mbps", "8-stream download (aggregate)", "MB/s", "%.0f", true)},
			run: func(p path) ([]float64, error) {
				return one(parallelDownload(p.dial, parallelStreams, o.size))
			},
		},
		{
			name:    "64-stream download",
			figures: []*figure{t.fig("parallel64_download_mbps", "64-stream download (aggregate)", "MB/s", "%.0f", true)},
			run: func(p path) ([]float64, error) {
				return one(parallelDownload(p.dial, manyStreams, o.size))
			},
		},
		{
			name:    "sequential connections",
			figures: connFigures("seq_conn", fmt.Sprintf("%s sequential connections", thousands(o.seqConns))),
			run:     func(p path) ([]float64, error) { return three(connRate(p.dial, o.seqConns, 1)) },
		},
		{
			name:    "concurrent connections",
			figures: connFigures("conc_conn", fmt.Sprintf("%s connections, %d workers", thousands(o.concConns), concWorkers)),
			run: func(p path) ([]float64, error) {
				return three(connRate(p.dial, o.concConns, concWorkers))
			},
		},
		{
			name: "head-of-line",
			figures: []*figure{
				t.fig("hol_echo_p50_ms", "Echo under 4 bulk streams: latency p50", "ms", "%.2f", false),
				t.fig("hol_echo_p99_ms", "Echo under 4 bulk streams: latency p99", "ms", "%.2f", false),
			},
			run: func(p path) ([]float64, error) { return two(headOfLine(p.dial, o.holFor)) },
		},
		{
			name: "stalled stream",
			figures: []*figure{
				t.fig("stall_download_mbps", "Single-stream download beside a stalled stream", "MB/s", "%.0f", true),
				t.fig("stall_download_ratio", "Download beside a stalled stream ÷ alone", "×", "%.2f", true),
			},
			run: func(p path) ([]float64, error) { return two(besideStalled(p.dial, o.size)) },
		},
		{
			name: "idle rss",
			figures: []*figure{
				t.fig("idle2k_rss_client_kib_per_conn", "RSS per idle connection, 2,000 idle: client", "KiB", "%.1f", false, proxies...),
				t.fig("idle2k_rss_exit_kib_per_conn", "RSS per idle connection, 2,000 idle: exit / server", "KiB", "%.1f", false, tunnels...),
				t.fig("idle10k_rss_client_kib_per_conn", "RSS per idle connection, 10,000 idle: client", "KiB", "%.1f", false, idleClient10k...),
				t.fig("idle10k_rss_exit_kib_per_conn", "RSS per idle connection, 10,000 idle: exit / server", "KiB", "%.1f", false, tunnels...),
			},
			run: func(p path) ([]float64, error) {
				v, exits, err := idleRSSOf(p.Key, o, prof, slices.Contains(idleClient10k, p.Key))
				rep.ProcExits = append(rep.ProcExits, prefixed("idle ", exits)...)
				return v, err
			},
		},
	}
}

// idleRSSOf measures RSS per idle connection in fresh processes of the
// path and a fresh origin process: client and exit at 2,000, then at
// 10,000 (only 2,000 unless all10k). Porthole direct mode, which holds
// both sockets of a connection in one process, stops at
// idleMostOneProcess instead of 10,000. With prof, the tunnel's heap and
// allocation profiles are taken with all connections open.
func idleRSSOf(pathKey string, o options, prof *profiler, all10k bool) (kib []float64, exits []string, err error) {
	orig, err := startOriginProc()
	if err != nil {
		return nil, nil, err
	}
	defer func() { exits = append(exits, "origin: "+orig.Stop()) }()
	steps := idleSteps
	if !all10k {
		steps = idleSteps[:1]
	} else if pathKey == pathPorthole {
		steps = []int{idleSteps[0], idleMostOneProcess()}
	}
	var st stack
	defer func() {
		for i := len(st) - 1; i >= 0; i-- {
			exits = append(exits, st[i]()...)
		}
	}()
	var procs []*proc
	var dial dialFunc
	var atFull func()
	switch pathKey {
	case pathPlain:
		p, err := startPlain()
		if err != nil {
			return nil, nil, err
		}
		st.addProc(p)
		procs, dial = []*proc{p}, connectDialer(p.addr, orig.addr)
	case pathPorthole:
		p, err := startPorthole(o.bin, prof != nil)
		if err != nil {
			return nil, nil, err
		}
		st.addProc(p)
		procs, dial = []*proc{p}, connectDialer(p.addr, orig.addr)
		if prof != nil {
			atFull = func() { prof.memory("direct-idle", procs) }
		}
	case pathTunnel:
		tun, err := startTunnel(o.exitBin, 0, prof != nil)
		if err != nil {
			return nil, nil, err
		}
		st.add(tun.Stop)
		c, err := tun.addClient(o.bin, "porthole-tunnel", prof != nil)
		if err != nil {
			return nil, nil, err
		}
		procs, dial = []*proc{c, tun.exit}, connectDialer(c.addr, orig.addr)
		if prof != nil {
			atFull = func() { prof.memory("tunnel-idle", procs) }
		}
	case pathYamux, pathSmux:
		r, err := startRef(pathKey, 0)
		if err != nil {
			return nil, nil, err
		}
		st.add(r.Stop)
		procs, dial = []*proc{r.client, r.server}, connectDialer(r.client.addr, orig.addr)
	default:
		return nil, nil, fmt.Errorf("idle rss: no processes for path %q", pathKey)
	}
	rows, err := idleRSS(orig.addr, steps, dial, atFull, procs...)
	if err != nil {
		return nil, nil, err
	}
	// [client, exit] at each step; n/a sides are ignored.
	v := make([]float64, 2*len(idleSteps))
	for i, row := range rows {
		copy(v[2*i:], row)
	}
	return v, nil, nil
}

const mainIntro = "Porthole is reached with HTTP CONNECT on its mixed port. The plain CONNECT column is the floor for " +
	"Porthole's direct mode: the bench binary as its own process, answering CONNECT and then io.Copy both ways (splice(2) " +
	"between the sockets on Linux), counting and showing nothing. In tunnel mode each connection is a stream of the " +
	"client's one WebSocket session to a porthole-exit process on the same machine, which connects to the origin " +
	"(client process → WebSocket → exit process → origin). The reference tunnels are built the same way by the bench " +
	"binary: a client process serving HTTP CONNECT, one WebSocket (gorilla/websocket, 64 KiB buffers) to a server process, " +
	"and hashicorp/yamux or xtaci/smux with its default configuration multiplexing the connections over it; a stream " +
	"starts with the target address, the server dials it and answers one status byte, then the client answers the " +
	"CONNECT (one round trip to the server, as Porthole's CONNECT)."

// thousands writes n with a thousands comma (1,000).
func thousands(n int) string {
	if n < 1000 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d,%03d", n/1000, n%1000)
}

func mainNotes(o options) string {
	return fmt.Sprintf(`How each figure is made:
- Downloads/uploads: one connection, the origin sends (or receives) the transfer size; timed from the command to the last byte (upload: to the origin's "OK").
- 8 and 64 parallel streams: the connections are opened first, then the transfer size split evenly over them at once; aggregate throughput.
- Connection figures: connect (+ CONNECT for the proxies), send one byte through an echo, read it back, close; %s one after another, and %s by %d concurrent workers. Latency covers the whole exchange. Every connection goes to the same echo origin, as a browser's go to the same few hosts: the exit has opened it before, so Porthole's tunnel answers the CONNECT at once and the byte follows the stream's OPEN (the first connection to a target waits for the exit's answer).
- Echo under bulk streams (head-of-line): 4 endless downloads on the same path (for the tunnels: the same session and WebSocket), and after %v of warm-up a 1-byte ping through an echo connection every 10 ms; p50 and p99 of the ping's round trip.
- Download beside a stalled stream (isolation): one download alone, then the same beside a stream on the same path (for the tunnels: the same session) that asks for endless bytes and never reads them, given %v to fill what it can first, then alone again; the ratio divides the rate beside it by the mean of the two alone. A download beside it is cut off after %v and counts what arrived by then.
- RSS per idle connection: fresh processes (and an origin in a process of its own), VmRSS before and after opening 2,000, then 10,000 idle proxied connections, growth ÷ count; client and exit (or reference server) each. Porthole runs with "max_conns": %d and porthole-exit with --max-streams %d. Porthole direct mode at 10,000 needs 20,000 descriptors in one process: where the open-file limit (here %d) is lower, its 10,000 row is measured at the most the limit allows, here %s idle connections (n/a below 2,000). The plain CONNECT proxy is measured at 2,000 only: its io.Copy holds a splice pipe per direction (6 descriptors per idle connection).
- CPU per GiB: user + system time of each process (/proc/PID/stat) during the single-stream transfer, ÷ GiB moved. The bench process (origin and load generator) is not counted.
- Extra proxy (optional): set BENCH_EXTRA_NAME (column name), BENCH_EXTRA_CMD (a shell command that starts the proxy's client and server and keeps running; its process group is killed at the end) and BENCH_EXTRA_PROXY (http://host:port, an HTTP CONNECT proxy that reaches 127.0.0.1). It is measured as a black box: throughput, connections and echo; no memory or CPU figures.
`, thousands(o.seqConns), thousands(o.concConns), concWorkers, holWarmup, stallFill, stallLimit, idleMaxStream, idleMaxStream, nofileLimit, thousands(idleMostOneProcess()))
}
