package ui

import (
	"errors"
	"sync"

	"github.com/rs/xid"

	"porthole/core/registry"
)

// busiest follows the registry to tell the tray's status line which
// program moved the most bytes over the last stats tick. It reads the same
// Stats events as the inspector: each live connection's program is noted
// when it opens or its lookup answers, and at a tick the deltas are added
// up by program. A tick in which nothing moved leaves no name.
//
// Its cost is one subscription: a map entry per live connection and, once
// a second, a pass over the connections that moved.
//
// Concurrency: run is the only goroutine that touches the map; name is
// safe from any goroutine.
type busiest struct {
	reg *registry.Registry

	mu  sync.Mutex
	top string // the program's name; "" when nothing moved or the top one is unknown
}

func newBusiest(reg *registry.Registry) *busiest { return &busiest{reg: reg} }

// name is the busiest program of the last tick, or "".
func (b *busiest) name() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.top
}

// run follows the registry until done is closed or the registry closes. A
// subscription that fell behind is replaced by a new one.
func (b *busiest) run(done <-chan struct{}) {
	snap, sub := b.reg.Subscribe()
	defer func() { sub.Close() }() // replaced on resubscription
	progs := make(map[xid.ID]*registry.Process, len(snap.Live))
	reset := func(s registry.Snapshot) {
		clear(progs)
		for _, info := range s.Live {
			progs[info.ID] = info.Process
		}
	}
	reset(snap)
	for {
		select {
		case <-done:
			return
		case batch, ok := <-sub.C:
			if !ok {
				if !errors.Is(sub.Err(), registry.ErrFellBehind) {
					return // the registry closed
				}
				sub.Close()
				snap, sub = b.reg.Subscribe()
				reset(snap)
				continue
			}
			for _, ev := range batch {
				b.apply(progs, ev)
			}
		}
	}
}

func (b *busiest) apply(progs map[xid.ID]*registry.Process, ev registry.Event) {
	switch ev.Kind {
	case registry.KindOpened, registry.KindEstablished, registry.KindProcess:
		if ev.Conn.State != registry.StateClosed {
			progs[ev.Conn.ID] = ev.Conn.Process
		}
	case registry.KindClosed:
		delete(progs, ev.Conn.ID)
	case registry.KindStats:
		if ev.Stats == nil {
			return
		}
		name := busiestOf(progs, ev.Stats)
		b.mu.Lock()
		b.top = name
		b.mu.Unlock()
	}
}

// busiestOf adds up a tick's deltas by program (by path, so two programs
// of one name are not added together) and names the one that moved the
// most; "" when nothing moved or the most was moved by connections whose
// program is not known (a wrong name is worse than none).
func busiestOf(progs map[xid.ID]*registry.Process, st *registry.Stats) string {
	sums := make(map[string]int64, 8)
	names := make(map[string]string, 8)
	for _, d := range st.Deltas {
		p := progs[d.ID]
		key := appKeyOf(p)
		sums[key] += d.DUp + d.DDown
		if key != "" {
			names[key] = p.Name
		}
	}
	var topKey string
	var top int64
	for key, n := range sums {
		if n > top || (n == top && n > 0 && key < topKey) {
			topKey, top = key, n
		}
	}
	if top <= 0 {
		return ""
	}
	return names[topKey]
}
