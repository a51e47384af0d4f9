package procinfo

import (
	"slices"

	"golang.org/x/sys/unix"

	"porthole/core/registry"
)

// The cache's bookkeeping (procfs_linux.go says what it remembers and
// why): lending entries to lookups, remembering a found process, noting
// ended connections, eviction and Close.

// empty reports whether nothing is cached.
func (t *procTable) empty() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recent) == 0
}

// borrow fills cands with the most recently used cached processes, their
// directories held open until release.
func (t *procTable) borrow(cands *[candidates]candidate) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := min(len(t.recent), candidates)
	for i, e := range t.recent[:n] {
		e.refs++
		c := &cands[i]
		*c = candidate{e: e}
		// Freed numbers (the kernel reuses the lowest), the two after the
		// highest recent one (a program opening connection after
		// connection) and the recent ones, in the order of the program's
		// habit (reuses), then the open ones oldest first.
		c.n = copy(c.fds[:], e.freed)
		add := func(fd int) {
			if c.n < len(c.fds) && fd >= 0 && !slices.Contains(c.fds[:c.n], fd) {
				c.fds[c.n] = fd
				c.n++
			}
		}
		after := func() {
			if len(e.fds) > 0 {
				// Several opened at once get the numbers after the highest.
				top := slices.Max(e.fds)
				add(top + 1)
				add(top + 2)
			}
		}
		if !e.reuses {
			after()
		}
		for _, fd := range e.fds {
			add(fd)
		}
		if e.reuses {
			after()
		}
		for _, fd := range e.open[:min(len(e.open), openFDs)] {
			add(fd)
		}
	}
	return n
}

func (t *procTable) release(cands []candidate) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range cands {
		e := cands[i].e
		e.refs--
		t.closeIfDone(e)
	}
}

// closeIfDone closes an evicted entry's directory once no lookup uses it.
// Called with t.mu held.
func (t *procTable) closeIfDone(e *procEntry) {
	if e.evicted && e.refs == 0 && e.dir >= 0 {
		e.ep.close()
		if e.hasFDDir {
			_ = unix.Close(e.fdDir) // read-only
			e.hasFDDir = false
		}
		_ = unix.Close(e.dir) // read-only
		e.dir = -1
	}
}

// evict takes e out of the cache. Called with t.mu held.
func (t *procTable) evict(e *procEntry) {
	e.evicted = true
	t.closeIfDone(e)
}

// remember puts e first in the cache, with fd first among its hints, and
// returns its process. A new e replaces any entry of the same
// pid (an older process when the pid was reused, or the same one found by
// a scan).
func (t *procTable) remember(e *procEntry, fd int, key connKey) registry.Process {
	p := e.proc
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(e.fds) > 0 && !slices.Contains(e.freed, fd) {
		// Where its socket was tells the program's habit (borrow): past its
		// highest recent number, it opens several at once; at or below it,
		// it closed one and opened the next before its end reached us.
		e.reuses = fd <= slices.Max(e.fds)
	}
	if _, dup := t.live[key]; !dup && len(t.live) < liveConns {
		t.live[key] = heldFD{e, fd}
		if len(e.open) < liveConns {
			e.open = append(e.open, fd)
		}
	}
	e.freed = slices.DeleteFunc(e.freed, func(x int) bool { return x == fd })
	if e.evicted {
		return p // forgotten meanwhile: the answer stands, the cache is not told
	}
	if t.closed {
		e.evicted = true
		t.closeIfDone(e)
		return p
	}
	i := slices.Index(t.recent, e)
	if i < 0 {
		for j, x := range t.recent {
			if x.pid == e.pid {
				t.evict(x)
				t.recent = slices.Delete(t.recent, j, j+1)
				break
			}
		}
		t.recent = slices.Insert(t.recent, 0, e)
		if len(t.recent) > cachedProcs {
			for _, x := range t.recent[cachedProcs:] {
				t.evict(x)
			}
			clear(t.recent[cachedProcs:])
			t.recent = t.recent[:cachedProcs]
		}
	} else if i > 0 {
		copy(t.recent[1:i+1], t.recent[:i])
		t.recent[0] = e
	}
	if len(e.fds) == 0 || e.fds[0] != fd {
		e.fds = slices.DeleteFunc(e.fds, func(x int) bool { return x == fd })
		e.fds = slices.Insert(e.fds, 0, fd)
		e.fds = e.fds[:min(len(e.fds), hintFDs)]
	}
	return p
}

// ended notes that the connection key, attributed before, has ended:
// the fd its program held it on is probably free now.
func (t *procTable) ended(key connKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.live[key]
	if !ok {
		return
	}
	delete(t.live, key)
	e := h.e
	if i := slices.Index(e.open, h.fd); i >= 0 {
		e.open = slices.Delete(e.open, i, i+1)
	}
	if e.evicted || slices.Contains(e.freed, h.fd) {
		return
	}
	i, _ := slices.BinarySearch(e.freed, h.fd)
	e.freed = slices.Insert(e.freed, i, h.fd)
	if len(e.freed) > freedFDs {
		e.freed = e.freed[:freedFDs] // the lowest are the likeliest
	}
}

func (t *procTable) forget(e *procEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.evicted {
		return
	}
	t.recent = slices.DeleteFunc(t.recent, func(x *procEntry) bool { return x == e })
	t.evict(e)
}

// close closes the cached directories (those in use by a lookup as it
// ends). Idempotent.
func (t *procTable) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	clear(t.live)
	for _, e := range t.recent {
		t.evict(e)
	}
	t.recent = nil
}
