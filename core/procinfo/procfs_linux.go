package procinfo

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"porthole/core/registry"
)

// Which process holds socket inode N: the one with a /proc/<pid>/fd/<fd>
// link reading "socket:[N]". Every read about one process goes through a
// descriptor of its /proc/<pid> directory: if the process exits, reads
// through it fail (ENOENT/ESRCH) even when the pid has been given to a new
// process, so what is read is always about the process that held the
// socket, and a process that exits half-way is "exited", never someone
// else.
//
// The cache remembers the processes that owned recent connections and the
// fd numbers their sockets had, and keeps each one's /proc/<pid> directory
// open, with its fd directory and the fdinfo of its epoll instances
// (procfs_epoll_linux.go): at most 2+maxEpolls descriptors per process
// and cachedProcs processes, closed on eviction and at Close.
// That pinned descriptor is the process: while it reads, the process is the
// one the cached name was read about, or the same process after an exec,
// which its executable link tells (sameProgram). So a program opening its
// 500th connection costs one readlinkat of its remembered fd and one of its
// executable, with no start-time check and no scan; a burst of its
// connections shares the executable's read (stillSameProgram).

const (
	cachedProcs = 64      // processes remembered (and directories kept open)
	candidates  = 8       // of them, tried before a scan of every process
	hintFDs     = 4       // fd numbers remembered per process
	freedFDs    = 8       // fd numbers of ended connections remembered per process
	openFDs     = 8       // of the fd numbers of its open connections, how many are tried
	liveConns   = 8192    // attributed connections remembered until they end
	maxSnapshot = 1 << 16 // fds remembered per process from listings
	readAhead   = 8       // fds a listing reads past the one it looked for
	maxFDs      = 1 << 20
	maxProcs    = 1 << 22
)

// procEntry is a cached process. pid, dir and proc never change; fds,
// freed, open, reuses, refs and evicted are guarded by procTable.mu.
type procEntry struct {
	pid  int
	dir  int              // open /proc/<pid>: pinned to this very process
	proc registry.Process // without UID, which is the socket's
	fds  []int            // fd numbers of its recent sockets, most recent first
	// freed are fd numbers of its sockets whose connections to us ended
	// (ended), lowest first: the kernel gives a new socket the lowest
	// free number, so a program with many connections most likely opens
	// its next one on one of these.
	freed []int
	// open are the fd numbers of its connections to us that have not
	// ended, oldest first: a program that closed one and opened the next
	// before we saw the end reuses its number, most likely the oldest's.
	open []int
	// reuses: its last socket found on a remembered number was at or
	// below the highest of fds, not past it (remember): its next one is
	// looked for on its recent numbers before the ones after them.
	reuses bool

	// fdDir is its open /proc/<pid>/fd (when hasFDDir), pinned the same
	// way: a link read through it costs one path step less than through
	// dir, and a hit reads one.
	fdDir    int
	hasFDDir bool

	refs    int  // lookups using dir now
	evicted bool // out of the cache: dir is closed when refs drops to 0

	ep epollIndex // what its epoll instances say (only through dir)
	// verified is the Resolver's mark taken just before the last
	// sameProgram check that passed began (stillSameProgram).
	verified atomic.Uint64
	// firstHints counts (down from 0) the rereads that found what the
	// first remembered fds did not; probes, the lookups since they stopped.
	firstHints atomic.Int32
	probes     atomic.Uint32

	snapMu sync.Mutex
	snap   fdSnapshot     // its files as the last listing read them
	byIno  map[uint64]int // snap's sockets: inode to fd
}

// candidate is what one lookup borrowed from the cache: e (dir held open
// for it) and a copy of e's fd hints.
// candsPool holds the candidate arrays of lookups: on the heap, not on the
// stack of the connection's goroutine (whose size the runtime's adaptive
// stack start averages into every new goroutine's, idle ones too).
var candsPool = sync.Pool{New: func() any { return new([candidates]candidate) }}

type candidate struct {
	e   *procEntry
	fds [freedFDs + hintFDs + 2 + openFDs]int // see borrow
	n   int
}

func (c *candidate) hints() []int { return c.fds[:c.n] }

// connKey names an attributed connection: the proxy's and the client's
// addresses.
type connKey struct{ local, remote netip.AddrPort }

// heldFD is where an attributed connection's socket was found.
type heldFD struct {
	e  *procEntry
	fd int
}

type procTable struct {
	r *Resolver

	mu     sync.Mutex
	recent []*procEntry // most recently used first, at most cachedProcs
	live   map[connKey]heldFD
	users  map[int]string
	closed bool
}

func newProcTable(r *Resolver) *procTable {
	return &procTable{r: r, users: make(map[int]string), live: make(map[connKey]heldFD)}
}

// epollFirstHints is how many remembered fds are tried before a cached
// program's epoll instances are reread.
const epollFirstHints = 3

// firstHintsMax is how many misses of the first remembered fds (the
// reread found the socket) stop them being tried first; a hit restores it.
const firstHintsMax = 2

// tryFirstHints reports whether to try the first remembered fds before a
// reread: while they find sockets, and on one lookup in 16 after they
// stopped (the program may have changed its ways).
func (e *procEntry) tryFirstHints() bool {
	return e.firstHints.Load() > -firstHintsMax || e.probes.Add(1)%16 == 0
}

// quickHints bounds the fd links a quick lookup reads: past them the
// answer is left to a full lookup on a worker.
const quickHints = 8

// quick answers from the cache alone: the remembered fd numbers of the
// cached processes, nothing listed, nothing forgotten. nil when they do
// not hold the socket (a full lookup then decides). It costs a few
// readlinkat calls, less than handing the lookup to another goroutine.
func (t *procTable) quick(key connKey, inode uint64, uid int, since uint64) *registry.Process {
	cands := candsPool.Get().(*[candidates]candidate)
	defer candsPool.Put(cands)
	n := t.borrow(cands)
	defer t.release(cands[:n])
	budget := quickHints
	for i := range cands[:n] {
		c := &cands[i]
		h := c.hints()
		h = h[:min(len(h), budget)]
		if len(h) == 0 {
			break
		}
		budget -= len(h)
		if p, res := t.search(key, c.e.dir, c.e.pid, inode, h, c.e, false, since); res == searchFound {
			t.r.hits.Add(1)
			return t.withUID(p, uid)
		}
	}
	return nil
}

// searched is what findCached looked at and a scan can skip.
type searched struct {
	pids   [candidates]int // of live processes
	n      int
	denied bool // one of them would not let us look
}

// findCached searches the cached processes (their remembered fds first,
// then all their open files). nil and what it searched when none holds
// the socket.
func (t *procTable) findCached(key connKey, inode uint64, uid int) (*registry.Process, searched) {
	cands := candsPool.Get().(*[candidates]candidate)
	defer candsPool.Put(cands)
	n := t.borrow(cands)
	defer t.release(cands[:n])
	var done searched
	for i := range cands[:n] {
		c := &cands[i]
		p, res := t.search(key, c.e.dir, c.e.pid, inode, c.hints(), c.e, true, 0)
		switch res {
		case searchFound:
			t.r.hits.Add(1)
			return t.withUID(p, uid), done
		case searchGone:
			// Its pid may now be another process's: the scan looks at it.
			t.forget(c.e)
			continue
		case searchDenied:
			done.denied = true
		}
		done.pids[done.n] = c.e.pid
		done.n++
	}
	return nil, done
}

// scan searches every process but those findCached searched just before
// (one that exited meanwhile is not among them: its pid, maybe reused, is
// searched), and returns the holder or the reason.
func (t *procTable) scan(key connKey, inode uint64, uid int, done searched) (*registry.Process, string) {
	t.r.scans.Add(1)
	denied := done.denied
	for _, pid := range t.allPIDs(uid) {
		if slices.Contains(done.pids[:done.n], pid) {
			continue
		}
		dir, err := unix.Open("/proc/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			if resultOf(err) == searchDenied {
				denied = true
			}
			continue
		}
		p, res := t.search(key, dir, pid, inode, nil, nil, true, 0)
		if res != searchFound {
			_ = unix.Close(dir) // read-only
		}
		switch res {
		case searchFound:
			return t.withUID(p, uid), "" // dir now belongs to the cache
		case searchDenied:
			denied = true
		}
	}
	if denied {
		return nil, ReasonNoPermission
	}
	return nil, ReasonNotFound
}

type searchResult int

const (
	searchMissing searchResult = iota // alive, does not hold the socket
	searchFound
	searchDenied // may not look at its open files
	searchGone   // exited
)

// search looks for socket inode among the open files of the process whose
// /proc directory is dir, trying the fd numbers in hint first, then (if
// list) every open file. cached is
// the cache's entry of that same dir, or nil when dir is newly opened:
// then, if found, dir is handed to a new cache entry (the caller closes it
// otherwise).
func (t *procTable) search(key connKey, dir, pid int, inode uint64, hint []int, cached *procEntry, list bool, since uint64) (registry.Process, searchResult) {
	var path [32]byte
	var link [64]byte
	// read reads fd's link through dir (it fails if the process exited)
	// and returns the socket inode it names, 0 for another kind of file.
	read := func(fd int) (uint64, bool) {
		var n int
		var err error
		if cached != nil && cached.hasFDDir {
			n, err = readlinkFD(cached.fdDir, fd, link[:])
		} else {
			n, err = unix.Readlinkat(dir, string(strconv.AppendInt(append(path[:0], "fd/"...), int64(fd), 10)), link[:])
		}
		if err != nil {
			return 0, false
		}
		return socketInode(link[:n]), true
	}
	// What the hints' links said: other connections' sockets, which their
	// own lookups then find at once (fdOf).
	var hinted [8]fdRead
	nh := 0
	holds := func(fd int) bool {
		ino, ok := read(fd)
		if ok && nh < len(hinted) {
			hinted[nh].fd, hinted[nh].ino = fd, ino
			nh++
		}
		return ok && ino == inode
	}
	if cached != nil {
		defer func() {
			if nh > 0 {
				cached.learnFDs(func(yield func(int, uint64) bool) {
					for _, h := range hinted[:nh] {
						if !yield(h.fd, h.ino) {
							return
						}
					}
				})
			}
		}()
	}
	fd := -1
	var snap []fdRead // what a listing of a new process read
	// epoll looks the socket up in cached's epoll instances, rereading
	// them if reread; false when they do not name it.
	epoll := func(reread bool) bool {
		efd, found, usable := cached.ep.find(dir, inode, reread, list)
		switch {
		case found && holds(efd):
			fd = efd
			return true
		case found:
			cached.ep.forget(inode) // stale: found the long way
		case usable && reread && !list:
			// Not among the sockets it waits on: most likely another
			// program's; a full lookup searches its files if no other
			// cached program has it.
			hint = nil
		}
		return false
	}
	small := false
	if cached != nil {
		// A listing or a read for another connection may have read this
		// socket's link already (a busy program opens several at once;
		// a connection looked up again).
		if n, ok := cached.fdOf(inode); ok && holds(n) {
			fd = n
		}
		// Its epoll instances name the fds of all its sockets at once
		// (procfs_epoll_linux.go): one read for a burst of lookups. A
		// program with very many files has its remembered fds tried first.
		small = cached.ep.small()
		if fd < 0 && !epoll(false) && small {
			// Before a reread, the likeliest remembered fds, while they
			// find the sockets: a program opening one connection after
			// another reuses one number; one opening many at once does
			// not, and its lookups share the rereads.
			n := 0
			if cached.tryFirstHints() {
				n = min(len(hint), epollFirstHints)
			}
			for _, h := range hint[:n] {
				if holds(h) {
					fd = h
					break
				}
			}
			if hint = hint[n:]; fd < 0 && epoll(true) && n > 0 {
				if cached.firstHints.Load() > -firstHintsMax {
					cached.firstHints.Add(-1) // (a race only shifts it by one)
				}
			} else if fd >= 0 && n > 0 {
				cached.firstHints.Store(firstHintsMax)
			}
		}
	}
	for _, h := range hint {
		if fd >= 0 {
			break
		}
		if holds(h) {
			fd = h
			break
		}
	}
	if fd < 0 && list && cached != nil && !small {
		epoll(true) // before a listing, which costs far more
	}
	if fd < 0 && list {
		fdDir, err := unix.Openat(dir, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return registry.Process{}, resultOf(err)
		}
		lb := listingPool.Get().(*listingBuf)
		defer lb.put()
		fds, err := readFDs(fdDir, maxFDs, lb)
		_ = unix.Close(fdDir) // read-only
		if err != nil {
			return registry.Process{}, resultOf(err)
		}
		if cached != nil {
			cached.order(fds)
		}
		got := make([]fdRead, 0, min(len(fds), 64))
		ahead := 0
		for _, n := range fds {
			if fd >= 0 {
				// A few reads past the socket, of the next likeliest
				// numbers: a busy program's other new connections, whose
				// lookups then find them in the snapshot (fdOf).
				if ahead++; ahead > readAhead || cached == nil {
					break
				}
			}
			ino, ok := read(n)
			if !ok {
				continue
			}
			got = append(got, fdRead{n, ino})
			if ino == inode && fd < 0 {
				fd = n
			}
		}
		if cached != nil {
			cached.learn(got, len(fds), fd < 0)
		} else {
			snap = got
		}
	}
	if fd < 0 {
		return registry.Process{}, searchMissing
	}
	if cached != nil {
		// Read through the pinned dir: the process the cached identity was
		// read about holds the socket right now, unless it has exec'd
		// since (the directory outlives an exec): then the program is
		// another one, and the entry is given up like an exited one's.
		if !cached.stillSameProgram(dir, t.r, since) {
			return registry.Process{}, searchGone
		}
		return t.remember(cached, fd, key), searchFound
	}
	st, err := readStat(dir)
	if err != nil {
		return registry.Process{}, resultOf(err)
	}
	e := &procEntry{pid: pid, dir: dir, proc: t.identity(dir, pid, st)}
	e.learn(snap, len(snap), true)
	// Still holding it after everything was read through dir: alive all
	// along, so what was read is about the process that holds the socket.
	if !holds(fd) {
		return registry.Process{}, searchGone
	}
	if fdDir, err := unix.Openat(dir, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		e.fdDir, e.hasFDDir = fdDir, true
	}
	return t.remember(e, fd, key), searchFound
}

// allPIDs lists every process, those owned by uid (the socket's owner, most
// likely the holder) first, newest pids first within each group.
func (t *procTable) allPIDs(uid int) []int {
	d, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(d)
	names, err := readNames(d, maxProcs)
	if err != nil {
		return nil
	}
	var mine, others []int
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		var st unix.Stat_t
		if uid >= 0 && unix.Fstatat(d, name, &st, 0) == nil && int(st.Uid) == uid {
			mine = append(mine, pid)
		} else {
			others = append(others, pid)
		}
	}
	slices.SortFunc(mine, func(a, b int) int { return b - a })
	slices.SortFunc(others, func(a, b int) int { return b - a })
	return append(mine, others...)
}

func resultOf(err error) searchResult {
	switch {
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return searchDenied
	default: // ENOENT, ESRCH: exited
		return searchGone
	}
}
