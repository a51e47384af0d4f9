package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// extraProxy is a user's own proxy, measured as a black box: started by a
// shell command (in a process group of its own, killed at the end) and
// reached as an HTTP CONNECT proxy.
//
//	BENCH_EXTRA_NAME   column name
//	BENCH_EXTRA_CMD    shell command that starts its client and server and keeps running
//	BENCH_EXTRA_PROXY  http://host:port of its CONNECT proxy
type extraProxy struct {
	name, addr string
	cmd        *exec.Cmd
	exited     chan struct{}
	stopOnce   sync.Once
}

// startExtra starts the extra proxy if BENCH_EXTRA_CMD is set and waits
// until its proxy address accepts connections; nil if it is not set.
func startExtra() (*extraProxy, error) {
	command := os.Getenv("BENCH_EXTRA_CMD")
	if command == "" {
		return nil, nil
	}
	name := os.Getenv("BENCH_EXTRA_NAME")
	if name == "" {
		name = "extra"
	}
	u, err := url.Parse(os.Getenv("BENCH_EXTRA_PROXY"))
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return nil, fmt.Errorf("BENCH_EXTRA_PROXY=%q: want http://host:port", os.Getenv("BENCH_EXTRA_PROXY"))
	}
	cmd := exec.Command("sh", "-c", command)
	// The user's own command gets the whole environment (it may need a
	// token the measured processes must not see).
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := newLineWatch(os.Stderr, "["+name+"] ", "")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	x := &extraProxy{name: name, addr: u.Host, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // how it ended is not ours to judge; Stop kills it
		close(x.exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", x.addr, time.Second)
		if err == nil {
			c.Close()
			return x, nil
		}
		select {
		case <-x.exited:
			return nil, fmt.Errorf("%s: BENCH_EXTRA_CMD ended before %s accepted connections", name, x.addr)
		default:
		}
		if time.Now().After(deadline) {
			x.Stop()
			return nil, fmt.Errorf("%s: %s not accepting after %v: %w", name, x.addr, startTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop sends SIGTERM to the command's process group, then SIGKILL after
// stopTimeout, and waits for the shell. Calling it again does nothing.
func (x *extraProxy) Stop() { x.stopOnce.Do(x.stop) }

func (x *extraProxy) stop() {
	pgid := x.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(os.Stderr, "bench: %s: SIGTERM: %v\n", x.name, err)
	}
	exitedWithin(x.exited, stopTimeout)
	// Children that outlived the shell (or ignored SIGTERM) go too.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(os.Stderr, "bench: %s: SIGKILL: %v\n", x.name, err)
	}
	<-x.exited
}
