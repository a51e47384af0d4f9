package main

import (
	"fmt"
	"os"
	"time"
)

// Paths of the round-trip table, in column order.
const (
	pathRTTAuto   = "rtt_auto"
	pathRTTFixed  = "rtt_fixed"
	pathRTTDirect = "rtt_direct"
	pathRTTYamux  = "rtt_yamux"
	pathRTTSmux   = "rtt_smux"
)

// fixedWindow is the window of the fixed-window client: the protocol's
// first window (tunnel.DefaultWindow), which the client is told, through
// PORTHOLE_TUNNEL_MAX_WINDOW, never to grow.
const fixedWindow = 256 << 10

// maxWindow is how far the auto-tuned client's window may grow
// (tunnel.DefaultMaxWindow): the ceiling of one stream is maxWindow ÷ RTT.
const maxWindow = 32 << 20

// runRTT measures tunnel mode over an emulated long link: a delay relay
// in this process between the porthole clients and the exit adds rtt/2
// in each direction. Two clients share the relay and the exit: one with
// the auto-tuned window, one whose window cannot grow.
func runRTT(o options, rep *report) error {
	orig, err := startOrigin()
	if err != nil {
		return err
	}
	defer orig.Close()
	web, err := startHTTPOrigin()
	if err != nil {
		return err
	}
	defer web.Close()
	tun, err := startTunnel(o.exitBin, o.rtt/2, false)
	if err != nil {
		return err
	}
	defer func() {
		if tun != nil {
			tun.Stop()
		}
	}()
	auto, err := tun.addClient(o.bin, "porthole-rtt", false)
	if err != nil {
		return err
	}
	fixed, err := tun.addClient(o.bin, "porthole-rtt-fixed", false, fmt.Sprintf("PORTHOLE_TUNNEL_MAX_WINDOW=%d", fixedWindow))
	if err != nil {
		return err
	}
	refs := map[string]*refSetup{}
	for _, mux := range []string{muxYamux, muxSmux} {
		r, err := startRef(mux, o.rtt/2)
		if err != nil {
			return err
		}
		defer func() { rep.ProcExits = append(rep.ProcExits, prefixed("rtt ", r.Stop())...) }()
		refs[mux] = r
	}
	// The same delay in front of the origin, for plain TCP: the relay's
	// own ceiling.
	check, err := startDelayRelay(orig.addr(), o.rtt/2)
	if err != nil {
		return err
	}
	defer check.Close()

	samples := 40
	if o.quick {
		samples = 20
	}
	rttMs := float64(o.rtt) / float64(time.Millisecond)
	t := newTable(rep, "rtt", fmt.Sprintf("Tunnel mode over a %v round trip", o.rtt),
		[]pathInfo{
			{pathRTTAuto, "tunnel, auto-tuned window"},
			{pathRTTFixed, "tunnel, window fixed at 256 KiB"},
			{pathRTTYamux, "yamux-ws (256 KiB window)"},
			{pathRTTSmux, "smux-ws"},
			{pathRTTDirect, "direct TCP through the relay"},
		},
		[]ratioDef{
			{"auto_over_fixed", "auto-tuned ÷ fixed", pathRTTAuto, pathRTTFixed},
			{"auto_over_yamux", "auto-tuned ÷ yamux-ws", pathRTTAuto, pathRTTYamux},
			{"auto_over_smux", "auto-tuned ÷ smux-ws", pathRTTAuto, pathRTTSmux},
		})
	t.intro = fmt.Sprintf("A relay inside the bench process sits between the porthole clients and the exit and delays each "+
		"direction by %v (a timestamped queue per direction, up to %d MiB each, so it adds latency, not a window). "+
		"The tunnel's own round-trip measurement (PING/PONG) sees the delay; the clients and the exit are the "+
		"same binaries as above. The fixed-window client runs with PORTHOLE_TUNNEL_MAX_WINDOW=%d, so its "+
		"receive window per stream stays at the first window. The reference tunnels (as in the loopback table) run through "+
		"a relay of their own with the same delay; yamux's default window is 256 KiB per stream, smux's default buffers "+
		"are 4 MiB per session and 64 KiB per stream.", o.rtt/2, relayQueueCap>>20, fixedWindow)
	t.notes = fmt.Sprintf(`How each figure is made:
- Download: one fresh connection read for %v, timed from the command; the bytes received so far are marked every %v. "First %v" is what arrived by then ÷ %v: the auto-tuned window starts at 256 KiB and grows up to %d MiB, and that ramp is in it. "Grown" is the rate over the last %v: the ramp left behind. "Time to 90 %%" is the middle of the first span (the longer of 200 ms and 4 round trips, since a window-limited stream arrives in bursts of one window per round trip) whose rate is at least 90 %% of the grown rate. The direct-TCP column goes through a relay with the same delay straight to the origin: the relay's own ceiling on this machine (it shares the cores with the tunnel's processes, so it weighs on the tunnel's figures too).
- First response byte: %d requests one after another, each on a new connection, with a small HTTP server as the origin; the time from connecting to the proxy until the first byte of the response. A plain "GET http://…" lets the proxy send the request right behind the stream's OPEN (about 1 round trip); a CONNECT to a target the exit opened in the last 5 minutes (here every request after the first: one origin) is answered at once and the request follows the OPEN the same way (about 1 round trip), where a first CONNECT to a target waits for the exit's OPEN_OK (about 2); the reference tunnels only speak CONNECT, and their client answers it after the server's status byte (2 round trips).
- smux's default protocol (version 1) has no per-stream window: the receiver only stops reading the WebSocket when its 4 MiB session buffer is full, and the sender writes as fast as TCP takes it. The relay's deep queue lets it through like an ideal link with a large TCP window, so its figure here is TCP's, not a window's.
- The TCP connections on either side of the relay see loopback round trips: there is no slow start or congestion window over the emulated link, only the tunnel's flow control, so a real link of this round trip can only be slower.
`, rampFirst+rampTail, rampEvery, rampFirst, rampFirst, maxWindow>>20, rampTail, samples)

	ceiling := float64(maxWindow) / mb / o.rtt.Seconds()
	downloadFig := t.fig("rtt_download_mbps", fmt.Sprintf("Single-stream download, first %v", rampFirst), "MB/s", "%.1f", true)
	downloadFig.Expect = "below the next row: the ramp is in it"
	tailFig := t.fig("rtt_download_tail_mbps", fmt.Sprintf("Single-stream download, grown (last %v)", rampTail), "MB/s", "%.1f", true)
	tailFig.Expect = fmt.Sprintf("window ÷ RTT: ≤ %.0f (%d MiB), %.1f (256 KiB)", ceiling, maxWindow>>20, float64(fixedWindow)/mb/o.rtt.Seconds())
	reachFig := t.fig("rtt_download_reach90_s", "Single-stream download, time to 90 % of the grown rate", "s", "%.2f", false)
	ceilFig := t.fig("rtt_download_grown_over_ceiling", fmt.Sprintf("Single-stream download, grown ÷ window ceiling (%d MiB ÷ RTT)", maxWindow>>20), "×", "%.2f", true, pathRTTAuto)
	ceilFig.Expect = "≤ 1"
	trace := os.Getenv("BENCH_RAMP_TRACE") != ""
	plainFig := t.fig("rtt_plain_get_first_byte_p50_ms", "First response byte p50: plain HTTP GET (early data)", "ms", "%.1f", false, pathRTTAuto)
	plainFig.Expect = fmt.Sprintf("≈ 1 RTT = %.0f", rttMs)
	connectFig := t.fig("rtt_connect_get_first_byte_p50_ms", "First response byte p50: CONNECT, then GET", "ms", "%.1f", false,
		pathRTTAuto, pathRTTYamux, pathRTTSmux)
	connectFig.Expect = fmt.Sprintf("porthole ≈ 1 RTT = %.0f (a target opened before); the references ≈ 2 RTT = %.0f", rttMs, 2*rttMs)

	paths := []path{
		{t.Paths[0], connectDialer(auto.addr, orig.addr()), []*proc{auto, tun.exit}},
		{t.Paths[1], connectDialer(fixed.addr, orig.addr()), []*proc{fixed, tun.exit}},
		{t.Paths[2], connectDialer(refs[muxYamux].client.addr, orig.addr()), []*proc{refs[muxYamux].client, refs[muxYamux].server}},
		{t.Paths[3], connectDialer(refs[muxSmux].client.addr, orig.addr()), []*proc{refs[muxSmux].client, refs[muxSmux].server}},
		{t.Paths[4], directDialer(check.addr()), nil},
	}
	proxyOf := map[string]string{
		pathRTTAuto:  auto.addr,
		pathRTTYamux: refs[muxYamux].client.addr,
		pathRTTSmux:  refs[muxSmux].client.addr,
	}
	experiments := []experiment{
		{
			name:    "download over the long link",
			figures: []*figure{downloadFig, tailFig, reachFig, ceilFig},
			run: func(p path) ([]float64, error) {
				r, err := rampDownload(p.dial, o.rtt)
				if trace && err == nil {
					r.trace(p.Key)
				}
				return []float64{r.first, r.grown, r.reach.Seconds(), r.grown / ceiling}, err
			},
		},
		{
			name:    "first response byte over the long link",
			figures: []*figure{plainFig, connectFig},
			run: func(p path) ([]float64, error) {
				proxy := proxyOf[p.Key]
				plain := 0.0
				if p.Key == pathRTTAuto {
					var err error
					plain, err = firstByteLatency(samples, func() (time.Duration, error) { return plainGet(proxy, web.addr()) })
					if err != nil {
						return nil, err
					}
				}
				connect, err := firstByteLatency(samples, func() (time.Duration, error) { return connectGet(proxy, web.addr()) })
				return []float64{plain, connect}, err
			},
		},
	}
	for _, e := range experiments {
		runExperiment(e, paths, o.runs)
	}
	rep.ProcExits = append(rep.ProcExits, prefixed("rtt ", tun.Stop())...)
	tun = nil
	return nil
}
