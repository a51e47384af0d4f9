package outbound

import (
	"strconv"
	"testing"

	"porthole/core/tunnel"
)

// TestProven: an OPEN_OK vouches for a target on its session for
// provenFor, renewed by the next; a refusal takes it back, and an older
// OPEN_OK recorded after it does not undo it; another session or a stop
// starts empty; a full set makes room without growing.
func TestProven(t *testing.T) {
	var p proven
	s1, s2 := new(tunnel.Session), new(tunnel.Session)
	const ttl = int64(provenFor)
	t0 := int64(1_000_000)
	if p.has(s1, "a.test:443", t0) {
		t.Fatal("an empty set vouches for a target")
	}
	p.add(s1, "a.test:443", t0, t0)
	if !p.has(s1, "a.test:443", t0+ttl-1) || p.has(s1, "a.test:443", t0+ttl) {
		t.Errorf("a target opened at t0 should be vouched for until t0+%v, not after", provenFor)
	}
	p.add(s1, "a.test:443", t0+ttl/2, t0+ttl/2)
	if !p.has(s1, "a.test:443", t0+ttl) {
		t.Error("a second OPEN_OK did not renew the target")
	}
	if p.has(s1, "a.test:80", t0) || p.has(s1, "b.test:443", t0) {
		t.Error("another port or host is vouched for")
	}
	if p.has(s2, "a.test:443", t0) {
		t.Error("another session's OPEN_OK vouches for a target")
	}

	// Two OPENs crossed: B's refusal is recorded before A's older OPEN_OK.
	p.forget(s1, "a.test:443", t0+10)
	if p.has(s1, "a.test:443", t0+11) {
		t.Error("a refused target is still vouched for")
	}
	p.add(s1, "a.test:443", t0+5, t0+12) // sent before the refusal came
	if p.has(s1, "a.test:443", t0+13) {
		t.Error("an OPEN_OK older than the refusal undid it")
	}
	p.add(s1, "a.test:443", t0+20, t0+21) // sent after it
	if !p.has(s1, "a.test:443", t0+22) {
		t.Error("an OPEN_OK sent after the refusal does not count")
	}
	// A refusal on an old session says nothing of the current one.
	p.add(s2, "a.test:443", t0+30, t0+30)
	p.forget(s1, "a.test:443", t0+31)
	if !p.has(s2, "a.test:443", t0+32) || p.has(s1, "a.test:443", t0+32) {
		t.Error("the new session's set is wrong after an old session's refusal")
	}

	// Full of expired entries: they go, the fresh ones stay.
	p.reset()
	for i := range provenMax - 1 {
		p.add(s1, "old"+strconv.Itoa(i)+":1", t0, t0)
	}
	later := t0 + ttl
	p.add(s1, "fresh:1", later, later)
	p.add(s1, "new:1", later, later)
	if len(p.at) != 2 || !p.has(s1, "fresh:1", later) || !p.has(s1, "new:1", later) {
		t.Errorf("after making room: %d entries, fresh %v, new %v; want 2, both", len(p.at), p.has(s1, "fresh:1", later), p.has(s1, "new:1", later))
	}
	// Full of live entries: all go, and the newcomer is in.
	for i := range provenMax - 2 {
		p.add(s1, "live"+strconv.Itoa(i)+":1", later, later)
	}
	p.add(s1, "one-more:1", later, later)
	if len(p.at) != 1 || !p.has(s1, "one-more:1", later) {
		t.Errorf("after a full set of live targets: %d entries, newcomer %v; want 1, in", len(p.at), p.has(s1, "one-more:1", later))
	}
	// Renewing a target already in does not clear a full set, nor does
	// a refusal of an unknown target grow it.
	for i := range provenMax - 1 {
		p.add(s1, "live"+strconv.Itoa(i)+":1", later, later)
	}
	p.add(s1, "one-more:1", later, later)
	p.forget(s1, "unknown:1", later)
	if len(p.at) != provenMax {
		t.Errorf("renewing or refusing in a full set left %d entries, want %d", len(p.at), provenMax)
	}
	p.reset()
	if p.has(s1, "one-more:1", later) {
		t.Error("a stopped tunnel still vouches for a target")
	}
}
