package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// idleSteps are the idle-connection counts at which RSS is read, in one
// pair of fresh processes: the growth from before the first to each step,
// divided by the step, is the RSS per idle connection at that count.
var idleSteps = []int{2000, 10000}

const (
	idleWorkers   = 16 // connections opened at once
	idleSettle    = 300 * time.Millisecond
	idleWait      = 60 * time.Second
	originReady   = "origin listening"
	idleMaxStream = 20000 // porthole's max_conns and porthole-exit's --max-streams here
)

// originCommand is `bench origin -listen ADDR`: the origin in a process
// of its own, for the idle figures. 10,000 idle connections are 10,000
// descriptors at the load generator and as many at the origin, more than
// one process may hold here (the hard limit cannot be raised without
// privileges).
func originCommand(args []string) int {
	fs := flag.NewFlagSet("origin", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	raiseNofile(false)
	o, err := startOriginAt(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "origin:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "%s on %s\n", originReady, o.addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	if err := o.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "origin:", err)
		return 1
	}
	return 0
}

// idleFdSlack is what a proxy process holds besides its connections'
// descriptors (listeners, epoll, the control API, log and pprof), with
// room to spare.
const idleFdSlack = 300

// idleMostOneProcess is the most idle connections a proxy that holds both
// sockets of each in one process can take under the open-file limit,
// rounded down to hundreds, and at most the last of idleSteps.
func idleMostOneProcess() int {
	most := (int(nofileLimit) - idleFdSlack) / 2 / 100 * 100
	return max(0, min(idleSteps[len(idleSteps)-1], most))
}

// startOriginProc starts the origin process.
func startOriginProc() (*proc, error) { return startSelf("origin", originReady, "origin") }

// idleAt asks the origin at addr how many connections are in IDLE.
func idleAt(addr string) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return 0, fmt.Errorf("origin stat: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	if _, err := io.WriteString(c, "STAT\n"); err != nil {
		return 0, fmt.Errorf("origin stat: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("origin stat: %w", err)
	}
	return strconv.ParseInt(strings.TrimSpace(line), 10, 64)
}

func waitIdleAt(addr string, n int64) error {
	deadline := time.Now().Add(idleWait)
	for {
		got, err := idleAt(addr)
		if err != nil {
			return err
		}
		if got == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("origin: %d connections idle after %v, want %d", got, idleWait, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// idleRSS opens idle connections with dial up to each of steps and returns
// the growth of each proc's VmRSS per connection in KiB: kib[step][proc].
// The caller starts fresh processes, so that memory freed by earlier work
// is not reused. atFull, if set, runs with all connections open.
func idleRSS(originAddr string, steps []int, dial dialFunc, atFull func(), procs ...*proc) ([][]float64, error) {
	// One connection first so one-time setup is not counted per connection.
	if _, err := echoOnce(dial); err != nil {
		return nil, err
	}
	time.Sleep(idleSettle)
	before, err := rssOf(procs)
	if err != nil {
		return nil, err
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err := waitIdleAt(originAddr, 0); err != nil {
		return nil, err
	}
	var kib [][]float64
	for _, n := range steps {
		more, err := openIdle(dial, n-len(conns))
		conns = append(conns, more...)
		if err != nil {
			return nil, err
		}
		if err := waitIdleAt(originAddr, int64(n)); err != nil {
			return nil, err
		}
		time.Sleep(idleSettle)
		after, err := rssOf(procs)
		if err != nil {
			return nil, err
		}
		row := make([]float64, len(procs))
		for i := range procs {
			row[i] = float64(after[i]-before[i]) / 1024 / float64(n)
		}
		kib = append(kib, row)
	}
	if atFull != nil {
		atFull()
	}
	// Let every close travel through before the processes are stopped:
	// yamux's streams spin in Read when their session shuts down
	// half-closed (see refExitGrace), which with thousands of them starves
	// the process for longer than the bench waits for it to stop.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if err := waitIdleAt(originAddr, 0); err != nil {
		return nil, err
	}
	time.Sleep(idleSettle)
	return kib, nil
}

// openIdle opens n connections in IDLE with idleWorkers at once; it
// returns those it opened, also on error.
func openIdle(dial dialFunc, n int) ([]net.Conn, error) {
	var mu sync.Mutex
	conns := make([]net.Conn, 0, n)
	var left atomic.Int64
	left.Store(int64(n))
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range idleWorkers {
		wg.Go(func() {
			for failed.Load() == nil && left.Add(-1) >= 0 {
				c, err := dial()
				if err == nil {
					_, err = io.WriteString(c, "IDLE\n")
					if err != nil {
						c.Close()
					}
				}
				if err != nil {
					err = fmt.Errorf("idle: connection %d: %w", n-int(left.Load()), err)
					failed.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return conns, *e
	}
	return conns, nil
}

func rssOf(procs []*proc) ([]int64, error) {
	v := make([]int64, len(procs))
	for i, p := range procs {
		var err error
		if v[i], err = p.rssBytes(); err != nil {
			return nil, err
		}
	}
	return v, nil
}
