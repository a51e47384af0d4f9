package e2e

// The lifecycle test's cycles: which scenario a cycle runs, and the checks
// the scenarios share. The scenarios themselves are in
// lifecycle_scenarios_test.go.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/rs/xid"

	"porthole/core/registry"
)

// lcRun runs cycles against one engine and counts what they proved.
type lcRun struct {
	proxy  string
	reg    *registry.Registry
	origin *lcOrigin
	ev     *lcEvents

	exact      atomic.Int64 // completed transfers whose counts were checked exactly
	interrupts atomic.Int64 // transfers ended early by a CloseAll of another cycle
	closedByID atomic.Int64 // CloseConn calls that found their connection live
	perKind    [lcNumKinds]atomic.Int64
}

// lcKind is a way a cycle can go.
type lcKind int

const (
	lcNormal lcKind = iota
	lcTargetSendsAndCloses
	lcClientHangsUp
	lcTargetResets
	lcCloseByID
	lcCloseInHandshake
	lcCloseInDial
	lcBothClose
	lcCloseAllRace
	lcNumKinds
)

// lcScenario is what a kind of cycle is called, how often it is picked and
// what it does.
type lcScenario struct {
	name   string
	weight int // in parts of 100
	run    func(x *lcRun, r *rand.Rand, p lcProto) error
}

// lcScenarios: CloseAll is rare, it ends every other cycle's connection too.
var lcScenarios = [lcNumKinds]lcScenario{
	lcNormal:               {"normal echo", 26, (*lcRun).normal},
	lcTargetSendsAndCloses: {"target sends and closes", 10, (*lcRun).targetSendsAndCloses},
	lcClientHangsUp:        {"client hangs up", 14, (*lcRun).clientHangsUp},
	lcTargetResets:         {"target resets", 10, (*lcRun).targetResets},
	lcCloseByID:            {"close by id", 10, (*lcRun).closeByID},
	lcCloseInHandshake:     {"close in handshake", 12, (*lcRun).closeInHandshake},
	lcCloseInDial:          {"close in dial", 8, (*lcRun).closeInDial},
	lcBothClose:            {"both ends close", 8, (*lcRun).bothClose},
	lcCloseAllRace:         {"CloseAll race", 2, (*lcRun).closeAllRace},
}

func (k lcKind) String() string { return lcScenarios[k].name }

func pickKind(r *rand.Rand) lcKind {
	n := r.IntN(100)
	for k, s := range lcScenarios {
		if n < s.weight {
			return lcKind(k)
		}
		n -= s.weight
	}
	return lcNormal
}

// cycle runs one cycle of kind k over a protocol r picks.
func (x *lcRun) cycle(r *rand.Rand, k lcKind) error {
	p := lcProto(r.IntN(2))
	x.perKind[k].Add(1)
	return lcScenarios[k].run(x, r, p)
}

// tunnel opens a tunnel to target for a scenario. If ok is false the cycle
// is over and err is its result: the proxy could not be reached or asked,
// or the connection ended before the answer, which only a CloseAll of
// another cycle may do (see interrupted; err is then nil if it was one).
func (x *lcRun) tunnel(p lcProto, target string) (c *lcClient, ok bool, err error) {
	c, err = openTunnel(x.proxy, p, target)
	if err != nil {
		if c == nil {
			return nil, false, err
		}
		return nil, false, x.interrupted(c, target, err)
	}
	return c, true, nil
}

// interrupted checks a connection that ended before the client was done
// although nothing in its own scenario ends it: only a CloseAll from
// another cycle may do that, so its close reason must say "closed by user".
func (x *lcRun) interrupted(c *lcClient, target string, cause error) error {
	_ = c.conn.Close()
	if timedOut(cause) {
		return fmt.Errorf("%s to %s: client timed out: %w", c.proto, target, cause)
	}
	info, err := x.ev.settle(c.laddr, target)
	if err != nil {
		return fmt.Errorf("%s to %s ended early (%v); %w", c.proto, target, cause, err)
	}
	if !errors.Is(info.Err, registry.ErrClosedByUser) {
		return fmt.Errorf("%s to %s ended early for the client (%v) with close reason %v; only a CloseAll may end it", c.proto, target, cause, info.Err)
	}
	x.interrupts.Add(1)
	return nil
}

// checkEcho checks what any echo connection must satisfy however it ended:
// the client received a prefix of what it sent, and the registry's counts
// lie between what was received and what was written.
func checkEcho(info registry.Info, written int64, got []byte, gotOff int64) error {
	recv := gotOff + int64(len(got))
	if !isPattern(got, gotOff) {
		return fmt.Errorf("connection %s: echoed bytes differ from those sent", info.ID)
	}
	if !(recv <= info.Down && info.Down <= info.Up && info.Up <= written) {
		return fmt.Errorf("connection %s: want received %d ≤ down %d ≤ up %d ≤ written %d", info.ID, recv, info.Down, info.Up, written)
	}
	return nil
}

// settleExact checks the record of a transfer the client completed: it
// closed cleanly (or by a CloseAll after the client was done), and the
// registry counted exactly up bytes up and down bytes down. what names the
// transfer in errors.
func (x *lcRun) settleExact(c *lcClient, target, what string, up, down int64) error {
	info, err := x.ev.settle(c.laddr, target)
	if err != nil {
		return err
	}
	if info.Err != nil && !errors.Is(info.Err, registry.ErrClosedByUser) {
		return fmt.Errorf("%s %s %s: clean transfer closed with reason %v", c.proto, what, info.ID, info.Err)
	}
	if info.Up != up || info.Down != down {
		return fmt.Errorf("%s %s %s: registry counted up %d, down %d; want %d and %d", c.proto, what, info.ID, info.Up, info.Down, up, down)
	}
	x.exact.Add(1)
	return nil
}

// closeConn closes id through the registry, counting it if it was live.
func (x *lcRun) closeConn(id xid.ID) {
	if x.reg.CloseConn(id) {
		x.closedByID.Add(1)
	}
}

// closedByUser waits for the Closed event of a connection the test closed
// through the registry (how says when, for errors) and checks that its
// reason says so.
func (x *lcRun) closedByUser(p lcProto, id xid.ID, how string) (registry.Info, error) {
	info, err := x.ev.closedInfo(id)
	if err != nil {
		return info, err
	}
	if !errors.Is(info.Err, registry.ErrClosedByUser) {
		return info, fmt.Errorf("%s %s: %s with reason %v", p, id, how, info.Err)
	}
	return info, nil
}
