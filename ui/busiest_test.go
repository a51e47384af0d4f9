package ui

import (
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/app"
	"porthole/app/config"
	"porthole/core/registry"
)

func TestStatusLineNamesTheBusiestProgram(t *testing.T) {
	running := app.Status{State: app.StateRunning}
	for _, tc := range []struct {
		name string
		in   controlsInput
		want string
	}{
		{"traffic", controlsInput{Status: running, Active: 12, DownRate: 1.2e6, UpRate: 40e3, Busiest: "firefox"},
			"Running · 12 connections · ↓ 1.2 MB/s ↑ 40 kB/s · firefox"},
		{"upload only", controlsInput{Status: running, Active: 1, UpRate: 5000, Busiest: "rsync"},
			"Running · 1 connection · ↓ 0 B/s ↑ 5.0 kB/s · rsync"},
		{"no traffic", controlsInput{Status: running, Active: 2, Busiest: "firefox"},
			"Running · 2 connections · ↓ 0 B/s ↑ 0 B/s"},
		{"nobody known", controlsInput{Status: running, Active: 2, DownRate: 3000},
			"Running · 2 connections · ↓ 3.0 kB/s ↑ 0 B/s"},
		{"stopped", controlsInput{Status: app.Status{State: app.StateStopped}, Busiest: "firefox"}, "Stopped"},
	} {
		tc.in.Config = config.Default()
		if got := viewOf(tc.in).Status; got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// waitBusiest polls b until it names want; the registry's ticks are what
// it waits for.
func waitBusiest(t *testing.T, b *busiest, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.name() != want {
		if time.Now().After(deadline) {
			t.Fatalf("busiest is %q, want %q, after 10 s", b.name(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The tracker's goroutine: the snapshot's connections count, traffic that
// keeps flowing names its program, and ticks with none clear it.
func TestBusiestFollowsTheRegistryTicks(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 10*time.Millisecond, 0)
	early := appConn(reg, "early.example:443", curlProc) // in the snapshot
	defer early.finish(nil)
	b := newBusiest(reg)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() { defer close(ended); b.run(done) }()
	defer func() { close(done); <-ended }()

	stop := make(chan struct{})
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		tick := time.NewTicker(time.Millisecond) // paces the traffic; nothing waits on it
		defer tick.Stop()
		for range 20_000 { // bounded: 20 s at most
			select {
			case <-stop:
				return
			case <-tick.C:
				early.conn.AddDown(100)
			}
		}
	}()
	waitBusiest(t, b, "curl")
	close(stop)
	<-pumped
	waitBusiest(t, b, "") // ticks that moved nothing
}

// Each tick names the program whose connections moved the most in it, and
// nobody when that was connections of no known program. The events are
// the registry's own, taken from a subscription beside the tracker's.
func TestBusiestNamesTheTopProgramOfEachTick(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 10*time.Millisecond, 0)
	b := newBusiest(reg)
	snap, sub := reg.Subscribe()
	defer sub.Close()
	progs := map[xid.ID]*registry.Process{}
	for _, info := range snap.Live {
		progs[info.ID] = info.Process
	}
	ff := appConn(reg, "alpha.example:443", firefox)
	cu := appConn(reg, "bravo.example:443", curlProc)
	away := appConn(reg, "delta.example:443", remote)
	defer finishAll(ff, cu, away)
	label := map[xid.ID]string{ff.conn.ID(): "firefox", cu.conn.ID(): "curl", away.conn.ID(): ""}

	// Phases: who sends how much before each tick.
	phases := []map[*testConn]int64{
		{cu: 10, ff: 1_000_000},          // firefox
		{cu: 5000, ff: 10},               // curl
		{away: 5_000_000, ff: 1_000_000}, // the unknown one moved most: nobody
	}
	seen := make([]bool, len(phases))
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for phase, round := 0, 0; phase < len(phases); round++ {
		if round == 2000 {
			t.Fatalf("phase %d never came in one tick", phase)
		}
		for c, n := range phases[phase] {
			c.conn.AddDown(n)
		}
		var st *registry.Stats
		for st == nil {
			select {
			case batch, ok := <-sub.C:
				if !ok {
					t.Fatalf("subscription ended: %v", sub.Err())
				}
				for _, ev := range batch {
					b.apply(progs, ev)
					if ev.Kind == registry.KindStats {
						st = ev.Stats
					}
				}
			case <-deadline.C:
				t.Fatal("no stats tick within 20 s")
			}
		}
		// What the test knows the tick means.
		sums := map[string]int64{}
		for _, d := range st.Deltas {
			sums[label[d.ID]] += d.DUp + d.DDown
		}
		want, top := "", int64(0)
		for name, n := range sums {
			if n > top {
				want, top = name, n
			}
		}
		if got := b.name(); got != want {
			t.Fatalf("phase %d: a tick with %v names %q, want %q", phase, sums, got, want)
		}
		if len(st.Deltas) == len(phases[phase]) { // every sender of the phase in one tick
			seen[phase] = true
			phase++
		}
	}
	if !seen[0] || !seen[1] || !seen[2] {
		t.Fatalf("phases seen %v", seen)
	}
}
