// Package instance keeps one Porthole desktop app per user and config
// file. The first to start listens on a local socket; a later start finds
// it there, asks it to show its connections window, and exits, so a user
// who launches Porthole again from the menu gets the running one in front
// instead of a second tray icon and a "port 8088 in use" error.
//
// The socket is private to the user: on Linux an abstract Unix socket (no
// file to go stale when a run is killed) whose peers are checked with
// SO_PEERCRED, elsewhere a socket file in the user's own cache directory.
//
// The exchange is one line each way: the newcomer sends "show", the
// running app answers "ok" once the request is queued.
package instance

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

var (
	// ErrRunning: another Porthole with the same config file is running;
	// it was asked to show its connections window.
	ErrRunning = errors.New("porthole is already running")
	// errNoAnswer: something holds the socket but did not answer.
	errNoAnswer = errors.New("no answer from the running porthole")
)

// exchangeTimeout bounds one request, both ways: a running app that is
// stuck must not make the newcomer hang.
const exchangeTimeout = 3 * time.Second

const (
	requestShow = "show"
	answerOK    = "ok"
)

// Instance is the running app's end. Show delivers the newcomers'
// requests; Close stops listening and waits for the goroutine it started.
// Safe for concurrent use.
type Instance struct {
	ln   net.Listener
	addr string
	log  *slog.Logger
	show chan struct{}

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Acquire makes this process the one for key (the config file's path),
// or, when another process already is, asks that one to show its
// connections window and returns ErrRunning. Any other error means
// single-instance does not work here (it is logged by the caller, and the
// app runs anyway).
func Acquire(key string, log *slog.Logger) (*Instance, error) {
	addr, err := address(key)
	if err != nil {
		return nil, err
	}
	// Bounded: listen, else ask the holder; a socket nobody answers on is a
	// stale file (not on Linux) and is removed once.
	for attempt := 0; attempt < 2; attempt++ {
		ln, lerr := listen(addr)
		if lerr == nil {
			inst := &Instance{ln: ln, addr: addr, log: log, show: make(chan struct{}, 1)}
			inst.wg.Go(inst.serve)
			return inst, nil
		}
		if !addrInUse(lerr) {
			return nil, fmt.Errorf("single instance: %w", lerr)
		}
		aerr := ask(addr)
		if aerr == nil {
			return nil, ErrRunning
		}
		if !removeStale(addr, aerr) {
			return nil, fmt.Errorf("single instance: %s is taken: %w", addr, aerr)
		}
	}
	return nil, fmt.Errorf("single instance: %s stays taken: %w", addr, errNoAnswer)
}

// Show receives one value per pending request (several newcomers in a
// row coalesce into one).
func (i *Instance) Show() <-chan struct{} { return i.show }

// Close stops answering; a newcomer after it becomes the running app.
// Idempotent.
func (i *Instance) Close() error {
	i.closeOnce.Do(func() {
		i.closeErr = i.ln.Close() // a socket file goes with it
		i.wg.Wait()
	})
	return i.closeErr
}

func (i *Instance) serve() {
	var delay time.Duration
	for {
		c, err := i.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors, say: newcomers must still find us
			// once it passes, so keep accepting, more slowly (as net/http).
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			i.log.Warn("single instance: accept", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		// One at a time: requests are tiny and bounded by the deadline, so
		// a misbehaving peer delays the next by at most exchangeTimeout.
		i.answer(c)
	}
}

func (i *Instance) answer(c net.Conn) {
	defer c.Close()
	if err := checkPeer(c); err != nil {
		i.log.Warn("single instance: refused a request", "err", err)
		return
	}
	if err := c.SetDeadline(time.Now().Add(exchangeTimeout)); err != nil {
		return
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != requestShow {
		i.log.Warn("single instance: a request that is not understood", "line", strings.TrimSpace(line), "err", err)
		return
	}
	select {
	case i.show <- struct{}{}:
	default: // one is already waiting
	}
	i.log.Info("Porthole was started again: showing the connections window")
	if _, err := c.Write([]byte(answerOK + "\n")); err != nil {
		i.log.Debug("single instance: answering", "err", err)
	}
}

// ask sends the show request to whoever holds addr and waits for "ok".
func ask(addr string) error {
	c, err := net.DialTimeout("unix", addr, exchangeTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	// Only this user's Porthole may tell us to exit: anyone can squat on
	// an abstract name, and would otherwise stop Porthole from starting.
	if err := checkPeer(c); err != nil {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	// From here on, whatever goes wrong means the holder does not speak
	// our protocol (or hung up on it): no answer.
	if err := c.SetDeadline(time.Now().Add(exchangeTimeout)); err != nil {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	if _, err := c.Write([]byte(requestShow + "\n")); err != nil {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	if strings.TrimSpace(line) != answerOK {
		return fmt.Errorf("%w: answered %q", errNoAnswer, strings.TrimSpace(line))
	}
	return nil
}

// name is the socket's name for key: short (socket paths are limited to
// about 100 bytes) and without the path itself.
func name(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "porthole-" + hex.EncodeToString(sum[:8])
}
