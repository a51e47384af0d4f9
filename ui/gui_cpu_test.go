package ui

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"porthole/internal/connecttest"
	"porthole/internal/desktoptest"
)

// guiBenchEnv asks TestGUICPU for the full measurement (1,000 connections,
// 10 s windows) instead of the quick one the test suite runs; `make
// bench-gui` sets it and, with guiBenchOutEnv, where the report goes.
const (
	guiBenchEnv    = "PORTHOLE_GUI_BENCH"
	guiBenchOutEnv = "PORTHOLE_GUI_BENCH_OUT"
)

// TestGUICPU measures the CPU the real GUI process uses (under Xvfb, with
// Mesa's software GL) while many proxied connections move a little data
// every second: with the connections window never opened, open, and
// hidden again. It asserts what must hold whatever the machine's speed
// (the window really shows and hides, every connection is served, the
// GUI survives); the CPU figures are logged, and written as a report by
// `make bench-gui`, never compared with a limit here.
func TestGUICPU(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real GUI in a child process")
	}
	conns, window := 100, 2*time.Second
	full := os.Getenv(guiBenchEnv) == "1"
	if full {
		conns, window = 1000, 10*time.Second
	}
	display := desktoptest.Xvfb(t)
	bus := desktoptest.SessionBus(t)
	watcher := startFakeWatcher(t, connectBus(t, bus), true)
	origin := startTrickleOrigin(t, 200, time.Second)

	// The baseline runs beside the GUI for the whole test: the same
	// controller and traffic in a process without a GUI, measured over the
	// same windows, so a busy machine weighs on both alike.
	core := startUIChild(t, display, bus, uiChildHeadlessEnv+"=1")
	coreAddr := core.waitLine(t, listeningRE)[1]

	child, addr := startTrayChild(t, display, bus, watcher)
	pids := []int{child.cmd.Process.Pid, core.cmd.Process.Pid}

	idle := measureCPU(t, window, pids...)
	defer openConns(t, addr, origin.addr, conns)()
	defer openConns(t, coreAddr, origin.addr, conns)()
	time.Sleep(time.Second) // the registry has them all; the status line has caught up
	hidden := measureCPU(t, window, pids...)

	child.command(t, "show")
	waitViewable(t, display, true)
	time.Sleep(time.Second) // first full draw of the table
	open := measureCPU(t, window, pids...)

	child.command(t, "hide")
	waitViewable(t, display, false)
	time.Sleep(time.Second)
	hiddenAgain := measureCPU(t, window, pids...)

	if got := origin.served(); got != 2*conns {
		t.Errorf("the origin served %d connections, want %d", got, 2*conns)
	}
	rows := []cpuRow{
		{"tray only, no connections", 0, idle},
		{fmt.Sprintf("tray only, %d active connections, connections window never opened", conns), conns, hidden},
		{fmt.Sprintf("connections window open, %d active connections updating", conns), conns, open},
		{fmt.Sprintf("connections window closed again, %d active connections", conns), conns, hiddenAgain},
	}
	report := cpuReport(rows, window, full)
	t.Log("\n" + report)
	if out := os.Getenv(guiBenchOutEnv); out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	child.signal(t, syscall.SIGTERM)
	child.waitExit(t)
}

type cpuRow struct {
	what  string
	conns int
	cpu   []float64 // share of one core: the GUI process, the baseline
}

func cpuReport(rows []cpuRow, window time.Duration, full bool) string {
	var b strings.Builder
	b.WriteString("# GUI CPU (porthole's GUI under Xvfb, software GL)\n\n")
	fmt.Fprintf(&b, "- Date: %s\n- Measured by: `make bench-gui` (TestGUICPU in ui/, without -race)\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- Each figure: CPU time of a process (utime+stime from /proc) over %v of wall time, as a share of one core.\n", window)
	b.WriteString("- Traffic: every connection is a CONNECT tunnel to a loopback origin that sends 200 bytes each second, so every row's counters and speeds change every second.\n")
	b.WriteString("- The GUI process runs the proxy too. The baseline is the same controller with the same number of connections and the same traffic in a second process without any GUI, measured over the same windows; the GUI's own share is the difference.\n")
	if !full {
		b.WriteString("- Quick run (the test suite's): fewer connections, shorter windows, possibly under -race.\n")
	}
	b.WriteString("\n| state | GUI process | baseline (no GUI) | GUI's own share | target |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		target := "–"
		switch {
		case strings.HasPrefix(r.what, "connections window open"):
			target = "GUI process < 15 %"
		case r.conns > 0:
			target = "GUI's share < 1 %"
		}
		fmt.Fprintf(&b, "| %s | %.1f %% | %.1f %% | %.1f %% | %s |\n", r.what, 100*r.cpu[0], 100*r.cpu[1], 100*(r.cpu[0]-r.cpu[1]), target)
	}
	return b.String()
}

// measureCPU is the share of one core each of pids used over window.
func measureCPU(t *testing.T, window time.Duration, pids ...int) []float64 {
	t.Helper()
	before := make([]int64, len(pids))
	for i, pid := range pids {
		before[i] = cpuTicks(t, pid)
	}
	at := time.Now()
	time.Sleep(window)
	wall := time.Since(at)
	shares := make([]float64, len(pids))
	for i, pid := range pids {
		// USER_HZ is 100 on every Linux the kernel ABI lets user space see.
		shares[i] = float64(cpuTicks(t, pid)-before[i]) / 100 / wall.Seconds()
	}
	return shares
}

// cpuTicks is utime+stime of pid in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces: fields count from ")".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return utime + stime
}

// waitViewable waits for the connections window to be shown or hidden.
func waitViewable(t *testing.T, display string, want bool) {
	t.Helper()
	desktoptest.WaitWindow(t, display, "Porthole — Connections", want)
}

// openConns opens n CONNECT tunnels through the proxy at proxyAddr to
// origin and keeps reading them until closeAll (or the end of the test).
func openConns(t *testing.T, proxyAddr, origin string, n int) (closeAll func()) {
	t.Helper()
	var wg sync.WaitGroup
	var open []net.Conn
	var once sync.Once
	closeAll = func() {
		once.Do(func() {
			for _, c := range open {
				c.Close()
			}
			wg.Wait()
		})
	}
	t.Cleanup(closeAll)
	for i := range n {
		c, br, resp, err := connecttest.Dial(proxyAddr, origin)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT %d: %s", i, resp.Status)
		}
		if err := c.SetDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			buf := make([]byte, 512)
			for {
				if _, err := br.Read(buf); err != nil {
					return // closed by closeAll
				}
			}
		})
	}
	return closeAll
}

// trickleOrigin sends size bytes every period on each connection, from a
// random phase, until the connection or the origin is closed.
type trickleOrigin struct {
	addr  string
	mu    sync.Mutex
	count int
}

func (o *trickleOrigin) served() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count
}

func startTrickleOrigin(t *testing.T, size int, period time.Duration) *trickleOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &trickleOrigin{addr: ln.Addr().String()}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	payload := []byte(strings.Repeat("x", size))
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.mu.Lock()
			o.count++
			o.mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				phase := time.NewTimer(rand.N(period))
				defer phase.Stop()
				select {
				case <-phase.C:
				case <-done:
					return
				}
				tick := time.NewTicker(period)
				defer tick.Stop()
				for {
					if _, err := c.Write(payload); err != nil {
						return
					}
					select {
					case <-tick.C:
					case <-done:
						return
					}
				}
			})
		}
	})
	return o
}
