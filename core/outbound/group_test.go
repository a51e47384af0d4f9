package outbound

import (
	"context"
	"errors"
	"testing"
	"time"

	"porthole/internal/chantest"
	"porthole/internal/origin"
	"porthole/internal/upstreamtest"
)

// twoSOCKS is a group over two real microsocks exits, "one" and "two".
func twoSOCKS(t *testing.T, policy Policy) (*Group, *upstreamtest.Proxy, *upstreamtest.Proxy) {
	t.Helper()
	p1, p2 := upstreamtest.Microsocks(t, "", ""), upstreamtest.Microsocks(t, "", "")
	exit := func(name, url string) ExitConfig {
		return ExitConfig{Name: name, Kind: KindSOCKS5, Upstream: UpstreamConfig{URL: url,
			ProbeInterval: 200 * time.Millisecond, MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second}}
	}
	g := startGroup(t, GroupConfig{Exits: []ExitConfig{exit("one", p1.URL), exit("two", p2.URL)}, Policy: policy, DialTimeout: 5 * time.Second})
	waitState(t, g, "one", ExitUp)
	waitState(t, g, "two", ExitUp)
	return g, p1, p2
}

func viaName(t *testing.T, g *Group, ctx context.Context, target string) string {
	t.Helper()
	c, err := g.DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.(ExitNamer).ExitName()
}

// TestGroupNamedExitAndSelect: a rule's named exit wins over the policy;
// the manual pick moves at once; an unknown name is an error.
func TestGroupNamedExitAndSelect(t *testing.T) {
	echo := origin.Echo(t)
	g, _, _ := twoSOCKS(t, PolicyManual)
	if via := viaName(t, g, t.Context(), echo); via != "one" {
		t.Errorf("manual, nothing selected: via %s, want the first", via)
	}
	named := WithDialInfo(t.Context(), DialInfo{Exit: "two"})
	if via := viaName(t, g, named, echo); via != "two" {
		t.Errorf("a rule naming two: via %s", via)
	}
	if err := g.Select("two"); err != nil {
		t.Fatal(err)
	}
	if via := viaName(t, g, t.Context(), echo); via != "two" {
		t.Errorf("two selected: via %s", via)
	}
	if err := g.Select("three"); !errors.Is(err, ErrUnknownExit) {
		t.Errorf("select of an unknown exit: %v", err)
	}
	if _, err := g.DialContext(WithDialInfo(t.Context(), DialInfo{Exit: "three"}), "tcp", echo); !errors.Is(err, ErrUnknownExit) {
		t.Errorf("a rule naming an unknown exit: %v", err)
	}
	if d, err := g.Test(t.Context(), "one"); err != nil || d <= 0 {
		t.Errorf("test now: %v, %v", d, err)
	}
}

// TestGroupFailover: failover moves to the second exit when the first
// dies and back when it returns; a rule naming the dead exit fails fast,
// naming it, instead of moving.
func TestGroupFailover(t *testing.T) {
	echo := origin.Echo(t)
	g, p1, _ := twoSOCKS(t, PolicyFailover)
	if via := viaName(t, g, t.Context(), echo); via != "one" {
		t.Errorf("failover: via %s, want one", via)
	}
	p1.Kill(t)
	// The first dial after the kill finds one down and goes on to two.
	if via := viaName(t, g, t.Context(), echo); via != "two" {
		t.Errorf("one killed: via %s, want two", via)
	}
	if st := g.State(); st.Active != "two" || st.Exits[0].State != ExitDown {
		t.Errorf("one killed: %+v", st)
	}
	// A rule naming the dead exit fails fast, naming it.
	began := time.Now()
	_, err := g.DialContext(WithDialInfo(t.Context(), DialInfo{Exit: "one"}), "tcp", echo)
	var de *ExitDownError
	if !errors.As(err, &de) || de.Name != "one" {
		t.Errorf("named dead exit: %v", err)
	}
	t.Logf("named dead exit answered in %v: %v", time.Since(began), err)
	p1.Start(t)
	waitState(t, g, "one", ExitUp)
	if via := viaName(t, g, t.Context(), echo); via != "one" {
		t.Errorf("one back: via %s, want one", via)
	}
}

// TestGroupWatch: a watcher gets the changes after its snapshot; one that
// does not read is dropped with ErrFellBehind; Close ends the rest and is
// idempotent.
func TestGroupWatch(t *testing.T) {
	g, _, _ := twoSOCKS(t, PolicyManual)
	snap, w := g.Subscribe()
	if snap.Selected != "one" || len(snap.Exits) != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
	_, slow := g.Subscribe()
	if err := g.Select("two"); err != nil {
		t.Fatal(err)
	}
	if st := chantest.Within(t, upTimeout, "a state after a selection", w.C); st.Selected != "two" || st.Active != "two" || !st.Exits[1].Selected {
		t.Errorf("after selecting two: %+v", st)
	}
	for i := range 2 * watchBuffer {
		if err := g.Select([]string{"one", "two"}[i%2]); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 * watchBuffer {
		if _, ok := <-slow.C; !ok {
			break
		}
	}
	if !errors.Is(slow.Err(), ErrFellBehind) {
		t.Errorf("a watcher that did not read: %v", slow.Err())
	}
	w.Close()
	w.Close()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	_, late := g.Subscribe()
	if _, ok := <-late.C; ok || !errors.Is(late.Err(), ErrGroupClosed) {
		t.Errorf("subscribing to a closed group: %v", late.Err())
	}
}

// TestFastestHysteresis is the fastest policy over statuses: it takes the
// fastest, keeps its pick against one slightly faster, moves to one
// clearly faster only once that has lasted fastestHold, and leaves a pick
// that is not usable at once.
func TestFastestHysteresis(t *testing.T) {
	g := &Group{policy: PolicyFastest, fastest: -1, challenger: -1}
	up := func(ms ...float64) []ExitStatus {
		var sts []ExitStatus
		for _, m := range ms {
			st := ExitStatus{State: ExitUp, Latency: time.Duration(m * float64(time.Millisecond))}
			if m < 0 {
				st = ExitStatus{State: ExitDown}
			}
			sts = append(sts, st)
		}
		return sts
	}
	t0 := time.Now()
	for _, step := range []struct {
		sts  []ExitStatus
		at   time.Duration // since t0
		want int
	}{
		{up(60, 10), 0, 1},
		{up(9, 10), time.Second, 1},       // slightly faster: stay
		{up(7.5, 10), 5 * time.Second, 1}, // 25 % faster: stay
		{up(5, 10), 6 * time.Second, 1},   // half: a challenger...
		{up(5, 10), 7 * time.Second, 1},   // ...not for long enough yet
		{up(5, 10), 8 * time.Second, 0},   // ...now it takes over
		{up(5, 40), 9 * time.Second, 0},
		{up(40, 5), 10 * time.Second, 0}, // one slow measure of the pick
		{up(6, 5), 11 * time.Second, 0},  // over: the challenge ends
		{up(40, 5), 12 * time.Second, 0},
		{up(-1, 30), 13 * time.Second, 1}, // the pick is down: at once
		{up(0, 30), 14 * time.Second, 1},  // unknown latency does not win
		{up(-1, -1), 15 * time.Second, -1},
	} {
		g.reconsiderLocked(step.sts, t0.Add(step.at))
		idx, _, _ := g.pickLocked(step.sts, -1, nil)
		if idx != step.want {
			t.Errorf("%v at +%v: picked %d, want %d", step.sts, step.at, idx, step.want)
		}
	}
}

// A latency is a change for watchers when it would be shown differently,
// and a first measure always is, however small; jitter below the shown
// precision is not.
func TestSameLatency(t *testing.T) {
	for _, tc := range []struct {
		a, b time.Duration
		same bool
	}{
		{0, 0, true},
		{0, 300 * time.Microsecond, false}, // the first measure of a LAN exit
		{20 * time.Microsecond, 0, false},
		{300 * time.Microsecond, 320 * time.Microsecond, true},
		{300 * time.Microsecond, 400 * time.Microsecond, false}, // 0.3 ms vs 0.4 ms
		{12 * time.Millisecond, 12*time.Millisecond + 300*time.Microsecond, true},
		{12 * time.Millisecond, 13 * time.Millisecond, false},
	} {
		if got := sameLatency(tc.a, tc.b); got != tc.same {
			t.Errorf("sameLatency(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
