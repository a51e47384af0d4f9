// Command apicpu measures what a dashboard costs the proxy: the CPU of a
// porthole process holding N idle proxied connections, first with nobody
// reading its control API, then with one /connections WebSocket at the
// dashboards' 1 s interval. Linux only (it reads /proc). The target is
// at most 5 % of a core at 10,000 connections (docs/api.md).
//
//	go run ./cmd/apicpu -porthole ../bin/porthole [-conns 1000,10000] [-for 20s]
//
// Everything runs on loopback; the origin and the clients are this
// process, so the porthole process's CPU is the proxy's and the API's
// alone.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const secret = "apicpu-bench"

func main() {
	bin := flag.String("porthole", "../bin/porthole", "the porthole binary to measure")
	connsList := flag.String("conns", "1000,10000", "numbers of idle connections, comma-separated")
	measure := flag.Duration("for", 20*time.Second, "length of each CPU measurement")
	flag.Parse()
	if err := raiseNofile(1 << 16); err != nil {
		fmt.Fprintln(os.Stderr, "apicpu: open-file limit:", err)
	}
	fmt.Println("| idle connections | porthole CPU, API unread | with /connections WS at 1 s | difference | one snapshot | settled after |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, f := range strings.Split(*connsList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintln(os.Stderr, "apicpu: -conns:", f)
			os.Exit(2)
		}
		r, err := runOne(*bin, n, *measure)
		if err != nil {
			fmt.Fprintln(os.Stderr, "apicpu:", err)
			os.Exit(1)
		}
		fmt.Printf("| %d | %.2f %% | %.2f %% | %+.2f %% of a core | %d KiB | %s |\n", n, r.idle, r.ws, r.ws-r.idle, r.msgBytes>>10, r.settle.Round(time.Second))
	}
}

type result struct {
	idle, ws float64 // % of one core
	msgBytes int64
	settle   time.Duration // until the setup's CPU had settled
}

func runOne(bin string, n int, measure time.Duration) (result, error) {
	var r result
	origin, err := holdOrigin()
	if err != nil {
		return r, err
	}
	defer origin.Close()
	proxyAddr, apiAddr := freeAddr(), freeAddr()
	dir, err := os.MkdirTemp("", "apicpu")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	cfg := fmt.Sprintf(`{"listen": %q, "bypass": [], "max_conns": %d, "api": {"listen": %q, "secret": %q}}`,
		proxyAddr, 2*n+100, apiAddr, secret)
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return r, err
	}
	cmd := exec.Command(bin, "--headless", "--config", path, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	if err := waitAPI(apiAddr); err != nil {
		return r, err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range n {
		c, err := connect(proxyAddr, origin.Addr().String())
		if err != nil {
			return r, fmt.Errorf("connection %d of %d: %w", len(conns)+1, n, err)
		}
		conns = append(conns, c)
	}
	// The setup's own work settles first (each new connection's program
	// lookup, the GC): until a second below 3 % of a core, for at most
	// two minutes.
	settled := time.Now()
	for time.Since(settled) < 2*time.Minute {
		p, err := cpuPercent(cmd.Process.Pid, time.Second)
		if err != nil {
			return r, err
		}
		if p < 3 {
			break
		}
	}
	r.settle = time.Since(settled)
	if r.idle, err = cpuPercent(cmd.Process.Pid, measure); err != nil {
		return r, err
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+apiAddr+"/connections?interval=1000&token="+secret, nil)
	if err != nil {
		return r, err
	}
	defer ws.Close()
	var got, bytes atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var snap struct {
				Connections []json.RawMessage `json:"connections"`
			}
			if json.Unmarshal(b, &snap) == nil && len(snap.Connections) == n {
				got.Add(1)
				bytes.Store(int64(len(b)))
			}
		}
	})
	time.Sleep(2 * time.Second) // the first snapshots
	r.ws, err = cpuPercent(cmd.Process.Pid, measure)
	_ = ws.Close()
	wg.Wait()
	if got.Load() == 0 {
		return r, errors.New("no snapshot listed every connection")
	}
	r.msgBytes = bytes.Load()
	return r, err
}

// holdOrigin accepts connections and holds them open, reading nothing.
func holdOrigin() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln, nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitAPI(addr string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/version", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the control API did not answer within 20 s")
}

func connect(proxy, target string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", proxy, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		_ = c.Close()
		return nil, err
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		_ = c.Close()
		return nil, fmt.Errorf("CONNECT: %v %v", err, resp)
	}
	return c, c.SetDeadline(time.Time{})
}

// cpuPercent is the process's CPU (user and system) over d as a
// percentage of one core.
func cpuPercent(pid int, d time.Duration) (float64, error) {
	a, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	time.Sleep(d)
	b, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return float64(b-a) / ticksPerSecond / time.Since(start).Seconds() * 100, nil
}

// cpuTicks reads utime+stime from /proc/PID/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, errors.New("odd /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + st, nil
}

// raiseNofile lifts the open-file limit to want (root may raise the hard
// limit too); the porthole child inherits it.
func raiseNofile(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return nil
		}
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
