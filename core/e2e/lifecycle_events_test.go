package e2e

// The registry as the lifecycle test's subscription sees it: every event
// is checked against the ones before it, and the clients wait on events,
// not on time, for their connections' records.

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/core/inbound"
	"porthole/core/registry"
	"porthole/core/relay"
)

type lcEvents struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced after every batch
	lastSeq  uint64
	opened   map[xid.ID]registry.Info
	closed   map[xid.ID]registry.Info
	byClient map[string][]xid.ID // Opened ids by client address, in order
	claimed  map[xid.ID]bool
	process  map[xid.ID]bool // ids whose Process event came
	problems []string
	ended    bool
	err      error // why the subscription ended
	done     chan struct{}
}

// watchRegistry subscribes and reads the subscription until it ends. The
// registry must be empty: every later connection is seen from its Opened.
func watchRegistry(t *testing.T, reg *registry.Registry) *lcEvents {
	t.Helper()
	snap, sub := reg.Subscribe()
	if len(snap.Live) != 0 {
		t.Fatalf("registry has %d live connections before the test", len(snap.Live))
	}
	e := &lcEvents{
		changed:  make(chan struct{}),
		lastSeq:  snap.Seq,
		opened:   make(map[xid.ID]registry.Info),
		closed:   make(map[xid.ID]registry.Info),
		byClient: make(map[string][]xid.ID),
		claimed:  make(map[xid.ID]bool),
		process:  make(map[xid.ID]bool),
		done:     make(chan struct{}),
	}
	for _, info := range snap.Closed {
		e.opened[info.ID], e.closed[info.ID] = info, info
	}
	go e.run(sub)
	t.Cleanup(func() {
		sub.Close()
		<-e.done
	})
	return e
}

func (e *lcEvents) problem(format string, args ...any) {
	if len(e.problems) < 50 {
		e.problems = append(e.problems, fmt.Sprintf(format, args...))
	}
}

func (e *lcEvents) run(sub *registry.Subscription) {
	defer close(e.done)
	for batch := range sub.C {
		e.mu.Lock()
		for _, ev := range batch {
			e.apply(ev)
		}
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
	}
	e.mu.Lock()
	e.ended, e.err = true, sub.Err()
	close(e.changed)
	e.mu.Unlock()
}

// apply checks one event against what came before; e.mu is held.
func (e *lcEvents) apply(ev registry.Event) {
	if ev.Seq != e.lastSeq+1 {
		e.problem("event %d (%s) follows event %d", ev.Seq, ev.Kind, e.lastSeq)
	}
	e.lastSeq = ev.Seq
	id := ev.Conn.ID
	switch ev.Kind {
	case registry.KindOpened:
		if _, dup := e.opened[id]; dup {
			e.problem("second Opened for %s", id)
			return
		}
		if ev.Conn.State != registry.StateConnecting {
			e.problem("Opened %s in state %s", id, ev.Conn.State)
		}
		e.opened[id] = ev.Conn
		e.byClient[ev.Conn.Client] = append(e.byClient[ev.Conn.Client], id)
	case registry.KindEstablished:
		if _, ok := e.opened[id]; !ok {
			e.problem("Established without Opened: %s", id)
		}
		if _, ok := e.closed[id]; ok {
			e.problem("Established after Closed: %s", id)
		}
		if ev.Conn.State != registry.StateOpen {
			e.problem("Established %s in state %s", id, ev.Conn.State)
		}
	case registry.KindClosed:
		if _, ok := e.opened[id]; !ok {
			e.problem("Closed without Opened: %s (%s → %s)", id, ev.Conn.Client, ev.Conn.Target)
		}
		if _, dup := e.closed[id]; dup {
			e.problem("second Closed for %s (%v, then %v)", id, e.closed[id].Err, ev.Conn.Err)
			return
		}
		if ev.Conn.State != registry.StateClosed || ev.Conn.End.IsZero() {
			e.problem("Closed %s in state %s, end %v", id, ev.Conn.State, ev.Conn.End)
		}
		if ev.Conn.Up < 0 || ev.Conn.Down < 0 {
			e.problem("Closed %s with negative counts %d/%d", id, ev.Conn.Up, ev.Conn.Down)
		}
		e.closed[id] = ev.Conn
	case registry.KindProcess:
		// The program lookup answers beside the connection, so it may
		// come before or after Established, even after Closed; but once,
		// for a connection that was opened, and with an answer.
		if _, ok := e.opened[id]; !ok {
			e.problem("Process without Opened: %s", id)
		}
		if e.process[id] {
			e.problem("second Process for %s", id)
		}
		e.process[id] = true
		if ev.Conn.Process == nil {
			e.problem("Process event %d for %s without a process", ev.Seq, id)
		}
	case registry.KindStats:
		if ev.Stats == nil {
			e.problem("Stats event %d without stats", ev.Seq)
		}
	default:
		e.problem("event %d of unknown kind %s", ev.Seq, ev.Kind)
	}
}

// wait calls cond (with e.mu held) after every batch until it is true, the
// subscription ends, or d passes.
func (e *lcEvents) wait(d time.Duration, cond func() bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		e.mu.Lock()
		ok, ended, ch := cond(), e.ended, e.changed
		e.mu.Unlock()
		if ok {
			return true
		}
		if ended {
			return false
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		}
	}
}

// claim waits for the Opened event of the connection a client at laddr
// asked for target and returns its id; each id is claimed once.
func (e *lcEvents) claim(laddr, target string) (xid.ID, error) {
	var id xid.ID
	ok := e.wait(lcCycleTimeout, func() bool {
		ids := e.byClient[laddr]
		for i := len(ids) - 1; i >= 0; i-- {
			if !e.claimed[ids[i]] && e.opened[ids[i]].Target == target {
				id = ids[i]
				e.claimed[id] = true
				return true
			}
		}
		return false
	})
	if !ok {
		return id, fmt.Errorf("no Opened event for client %s → %s within %v", laddr, target, lcCycleTimeout)
	}
	return id, nil
}

// closedInfo waits for id's Closed event.
func (e *lcEvents) closedInfo(id xid.ID) (registry.Info, error) {
	var info registry.Info
	ok := e.wait(lcCycleTimeout, func() bool {
		var ok bool
		info, ok = e.closed[id]
		return ok
	})
	if !ok {
		return info, fmt.Errorf("connection %s has no Closed event %v after its client finished", id, lcCycleTimeout)
	}
	return info, nil
}

// settle finds the record of a client's connection and waits for it to be
// closed: every connection that got as far as the registry must end.
func (e *lcEvents) settle(laddr, target string) (registry.Info, error) {
	id, err := e.claim(laddr, target)
	if err != nil {
		return registry.Info{}, err
	}
	return e.closedInfo(id)
}

// counts returns the numbers of Opened and Closed events so far.
func (e *lcEvents) counts() (opened, closed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.opened), len(e.closed)
}

// drained waits until every Opened connection has its Closed event.
func (e *lcEvents) drained(d time.Duration) bool {
	return e.wait(d, func() bool { return len(e.closed) == len(e.opened) })
}

// openedTo counts the Opened connections to target; e.mu is held (call it
// from a wait condition).
func (e *lcEvents) openedTo(target string) int {
	n := 0
	for _, info := range e.opened {
		if info.Target == target {
			n++
		}
	}
	return n
}

// check fails the test for every inconsistency seen in the stream, for
// connections opened and never closed, and for connections closed with a
// reason no test causes.
func (e *lcEvents) check(t *testing.T) {
	t.Helper()
	e.checkConsistent(t)
	e.mu.Lock()
	defer e.mu.Unlock()
	bad := 0
	for id, info := range e.closed {
		if !expectedReason(info.Err) {
			if bad++; bad <= 10 {
				t.Errorf("connection %s (%s → %s) closed with an unexpected reason: %v", id, info.Client, info.Target, info.Err)
			}
		}
	}
}

// checkConsistent fails the test for every inconsistency the event stream
// showed (a second Closed among them) and for connections opened and never
// closed. Unlike check, it leaves the close reasons to the test.
func (e *lcEvents) checkConsistent(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.problems {
		t.Errorf("event stream: %s", p)
	}
	n := 0
	for id, info := range e.opened {
		if _, ok := e.closed[id]; !ok {
			if n++; n <= 20 {
				t.Errorf("connection %s (%s %s → %s) opened and never closed", id, info.Proto, info.Client, info.Target)
			}
		}
	}
	if n > 20 {
		t.Errorf("... %d connections opened and never closed in all", n)
	}
	if e.ended && e.err != nil && !errors.Is(e.err, registry.ErrClosed) {
		t.Errorf("subscription ended early: %v", e.err)
	}
}

// expectedReason: every way the test ends connections is an expected
// ending (the logs must say DEBUG, not ERROR): clean, closed by the user,
// stopped, the blackhole's dial timeout, or the peer going away.
func expectedReason(err error) bool {
	return err == nil || errors.Is(err, registry.ErrClosedByUser) || errors.Is(err, inbound.ErrStopped) ||
		errors.Is(err, os.ErrDeadlineExceeded) || relay.Expected(err)
}

// reasons counts the close reasons by kind, for the test log.
func (e *lcEvents) reasons() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[string]int{}
	for _, info := range e.closed {
		switch err := info.Err; {
		case err == nil:
			m["clean"]++
		case errors.Is(err, registry.ErrClosedByUser):
			m["closed by user"]++
		case errors.Is(err, inbound.ErrStopped):
			m["stopped"]++
		case errors.Is(err, os.ErrDeadlineExceeded):
			m["dial timeout"]++
		case relay.Expected(err):
			m["peer went away"]++
		default:
			m["unexpected: "+err.Error()]++
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return strings.TrimSpace(b.String())
}
