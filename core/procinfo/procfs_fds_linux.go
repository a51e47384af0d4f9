package procinfo

import (
	"iter"
	"slices"
)

// fdSnapshot is what the last listing of a process's open files read: fd
// number to socket inode (0: another kind of file). It only orders the
// next listing (every answer is read afresh), so a stale one costs time,
// never a wrong answer.
type fdSnapshot map[int]uint64

// fdRead is what one fd's link said (ino 0: not a socket).
type fdRead struct {
	fd  int
	ino uint64
}

// order sorts a listing's fds in the order to read them: numbers the
// snapshot has not seen first (new files), highest first (a program that
// opens connection after connection gets number after number); then
// sockets, the most recently created first (short connections come and
// go, so their numbers are the ones reused); other files (pipes, epoll,
// libraries) last, as they rarely change.
func (e *procEntry) order(fds []int) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	e.snap.order(fds)
}

func (s fdSnapshot) order(fds []int) {
	rank := func(fd int) (int, uint64) {
		ino, ok := s[fd]
		switch {
		case !ok:
			return 0, ^uint64(fd) // descending
		case ino != 0:
			return 1, ^ino // descending inode
		default:
			return 2, uint64(fd)
		}
	}
	slices.SortFunc(fds, func(a, b int) int {
		ra, ka := rank(a)
		rb, kb := rank(b)
		if ra != rb {
			return ra - rb
		}
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
}

// learnFDs adds single reads to e's snapshot (one it has, at least).
func (e *procEntry) learnFDs(read iter.Seq2[int, uint64]) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if e.snap == nil || len(e.snap) > maxSnapshot {
		e.resetSnapshot(0)
	}
	for fd, ino := range read {
		e.note(fd, ino)
	}
}

// resetSnapshot empties e's snapshot. Called with e.snapMu held.
func (e *procEntry) resetSnapshot(size int) {
	e.snap = make(fdSnapshot, size)
	e.byIno = make(map[uint64]int, size)
}

// note records that fd held socket inode ino (0: no socket). Called with
// e.snapMu held.
func (e *procEntry) note(fd int, ino uint64) {
	if e.snap == nil {
		e.resetSnapshot(0)
	}
	if old, ok := e.snap[fd]; ok && old != 0 && e.byIno[old] == fd {
		delete(e.byIno, old)
	}
	e.snap[fd] = ino
	if ino != 0 {
		e.byIno[ino] = fd
	}
}

// fdOf is the fd on which e's snapshot saw socket inode.
func (e *procEntry) fdOf(inode uint64) (int, bool) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	fd, ok := e.byIno[inode]
	return fd, ok
}

// learn adds what a listing of n fds read to e's snapshot; a complete
// listing (every fd read) also drops the fds that are gone.
func (e *procEntry) learn(read []fdRead, n int, complete bool) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if e.snap == nil || complete || len(e.snap) > 2*n+64 || len(e.snap) > maxSnapshot {
		// (Numbers long closed, when it outgrew the listing: start over.)
		e.resetSnapshot(len(read))
	}
	for _, r := range read {
		e.note(r.fd, r.ino)
	}
}
