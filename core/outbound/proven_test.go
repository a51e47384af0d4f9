package outbound

import (
	"strconv"
	"testing"
	"time"
)

// TestProven: an OPEN_OK vouches for a target for provenFor, renewed by
// the next; a refusal or a stop takes it back; a full set makes room
// without growing.
func TestProven(t *testing.T) {
	var p proven
	t0 := time.Now()
	if p.has("a.test:443", t0) {
		t.Fatal("an empty set vouches for a target")
	}
	p.add("a.test:443", t0)
	if !p.has("a.test:443", t0.Add(provenFor-time.Second)) || p.has("a.test:443", t0.Add(provenFor)) {
		t.Errorf("a target opened at t0 should be vouched for until t0+%v, not after", provenFor)
	}
	p.add("a.test:443", t0.Add(provenFor/2))
	if !p.has("a.test:443", t0.Add(provenFor)) {
		t.Error("a second OPEN_OK did not renew the target")
	}
	if p.has("a.test:80", t0) || p.has("b.test:443", t0) {
		t.Error("another port or host is vouched for")
	}
	p.forget("a.test:443")
	if p.has("a.test:443", t0) {
		t.Error("a refused target is still vouched for")
	}

	// Full of expired entries: they go, the fresh ones stay.
	for i := range provenMax - 1 {
		p.add("old"+strconv.Itoa(i)+":1", t0)
	}
	later := t0.Add(provenFor)
	p.add("fresh:1", later)
	p.add("new:1", later)
	if len(p.at) != 2 || !p.has("fresh:1", later) || !p.has("new:1", later) {
		t.Errorf("after making room: %d entries, fresh %v, new %v; want 2, both", len(p.at), p.has("fresh:1", later), p.has("new:1", later))
	}
	// Full of live entries: all go, and the newcomer is in.
	for i := range provenMax - 2 {
		p.add("live"+strconv.Itoa(i)+":1", later)
	}
	p.add("one-more:1", later)
	if len(p.at) != 1 || !p.has("one-more:1", later) {
		t.Errorf("after a full set of live targets: %d entries, newcomer %v; want 1, in", len(p.at), p.has("one-more:1", later))
	}
	// Renewing a target already in does not clear a full set.
	for i := range provenMax - 1 {
		p.add("live"+strconv.Itoa(i)+":1", later)
	}
	p.add("one-more:1", later)
	if len(p.at) != provenMax {
		t.Errorf("renewing a known target in a full set left %d entries, want %d", len(p.at), provenMax)
	}
	p.reset()
	if p.has("one-more:1", later) {
		t.Error("a stopped tunnel still vouches for a target")
	}
}
