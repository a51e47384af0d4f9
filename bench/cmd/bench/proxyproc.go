package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proxyProc is a running `porthole --headless` process listening on a free
// loopback port. Stop sends SIGINT and waits (bounded) for it to exit.
type proxyProc struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{} // closed when Wait returns
	err    error         // Wait's result, valid after exited is closed
}

const (
	startTimeout = 10 * time.Second
	stopTimeout  = 10 * time.Second
)

func startProxy(bin string) (*proxyProc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	// An empty config dir keeps the user's own config (tunnel mode, system
	// proxy, ...) out of the measurement.
	cfgDir, err := os.MkdirTemp("", "porthole-bench-")
	if err != nil {
		return nil, fmt.Errorf("proxy: config dir: %w", err)
	}
	cmd := exec.Command(bin, "--headless", "--listen", addr, "--mode", "direct", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+cfgDir)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(cfgDir)
		return nil, fmt.Errorf("proxy: start %s: %w", bin, err)
	}
	p := &proxyProc{cmd: cmd, addr: addr, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		os.RemoveAll(cfgDir)
		close(p.exited)
	}()
	if err := p.waitListening(); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before porthole binds it; on loopback that is unlikely enough.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("proxy: find free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (p *proxyProc) waitListening() error {
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("proxy: %s before listening on %s", p.exitDesc(), p.addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proxy: not listening on %s after %v: %w", p.addr, startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGINT, waits up to stopTimeout, then kills. It returns how
// the process ended: "exit 0", "exit 3", "signal: interrupt",
// "killed after 10s".
func (p *proxyProc) Stop() string {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
			p.cmd.Process.Kill()
			<-p.exited
			return fmt.Sprintf("killed after %v", stopTimeout)
		}
	}
	return p.exitDesc()
}

// exitDesc describes how the process ended; call after exited is closed.
func (p *proxyProc) exitDesc() string {
	if p.err == nil {
		return "exit 0"
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal: " + ws.Signal().String()
		}
		return fmt.Sprintf("exit %d", ee.ExitCode())
	}
	return p.err.Error()
}

// rssBytes reads VmRSS of the proxy process from /proc.
func (p *proxyProc) rssBytes() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("proxy: read rss: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proxy: parse VmRSS %q: %w", v, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("proxy: no VmRSS in /proc/%d/status", p.cmd.Process.Pid)
}
