package outbound

// watchBuffer is how many states a watcher may leave unread before it is
// dropped; states come at most about once a second per exit.
const watchBuffer = 16

// ExitWatch delivers the group's state after every change (the tray's
// submenu, notifications), continuing exactly after the snapshot it was
// created with.
//
// Concurrency: the group sends on C without ever waiting; a watcher that
// lets watchBuffer states pile up is dropped (C closed, Err
// ErrFellBehind). Close is idempotent and safe from any goroutine; it
// closes C.
type ExitWatch struct {
	// C delivers whole states, oldest first. It is closed when the watch
	// ends; Err then says why (nil after Close).
	C <-chan GroupState

	g   *Group
	ch  chan GroupState
	err error // guarded by g.mu
	end bool  // guarded by g.mu
}

// Subscribe returns, atomically, the current state and a watch whose
// first state is the next change after it. On a closed group the watch
// is returned ended with ErrGroupClosed.
func (g *Group) Subscribe() (GroupState, *ExitWatch) {
	sts := g.statuses()
	w := &ExitWatch{g: g, ch: make(chan GroupState, watchBuffer)}
	w.C = w.ch
	g.mu.Lock()
	defer g.mu.Unlock()
	// The snapshot is the state last published, so that the next state
	// sent is exactly the change after it; fresher statuses are read
	// only for a group not yet told anything.
	snap := g.last
	if len(snap.Exits) == 0 {
		snap = g.stateLocked(sts)
	}
	snap.Exits = append([]ExitStatus(nil), snap.Exits...) // the caller's own copy
	if g.closed {
		w.end, w.err = true, ErrGroupClosed
		close(w.ch)
		return snap, w
	}
	g.watchers[w] = struct{}{}
	return snap, w
}

// publishLocked hands st to every watcher without waiting; the caller
// holds g.mu.
func (g *Group) publishLocked(st GroupState) {
	for w := range g.watchers {
		st := st
		st.Exits = append([]ExitStatus(nil), st.Exits...) // each watcher its own copy
		select {
		case w.ch <- st:
		default:
			g.endLocked(w, ErrFellBehind)
		}
	}
}

// endLocked ends w with err; the caller holds g.mu.
func (g *Group) endLocked(w *ExitWatch, err error) {
	if w.end {
		return
	}
	w.end, w.err = true, err
	delete(g.watchers, w)
	close(w.ch)
}

// Err is why the watch ended: nil while it runs and after Close.
func (w *ExitWatch) Err() error {
	w.g.mu.Lock()
	defer w.g.mu.Unlock()
	return w.err
}

// Close ends the watch.
func (w *ExitWatch) Close() {
	w.g.mu.Lock()
	defer w.g.mu.Unlock()
	w.g.endLocked(w, nil)
}
