package procinfo

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"porthole/core/registry"
)

// Which process holds socket inode N: the one with a /proc/<pid>/fd/<fd>
// link reading "socket:[N]". Every read about one process goes through a
// descriptor of its /proc/<pid> directory, opened once: if the process
// exits, reads through it fail (ENOENT/ESRCH) even when the pid has been
// given to a new process, so what is read is always about the process that
// held the socket, and a process that exits half-way is "exited", never
// someone else.
//
// The cache remembers the processes that owned recent connections, their
// identity checked by start time (pid reuse), and the fd numbers their
// sockets had: a program opening its 500th connection is found by looking
// at its own open files only, usually the first fd tried.

const (
	cachedProcs = 64 // processes remembered
	candidates  = 8  // of them, tried before a scan of every process
	hintFDs     = 4  // fd numbers remembered per process
	maxFDs      = 1 << 20
	maxProcs    = 1 << 22
)

type procEntry struct {
	pid   int
	start uint64           // start time (clock ticks after boot): the pid's identity
	proc  registry.Process // without UID, which is the socket's
	fds   []int            // fd numbers of its recent sockets, most recent first
}

type procTable struct {
	r *Resolver

	mu     sync.Mutex
	recent []*procEntry // most recently used first, at most cachedProcs
	users  map[int]string
}

func newProcTable(r *Resolver) *procTable {
	return &procTable{r: r, users: make(map[int]string)}
}

// find returns the process holding the socket inode, or nil and the reason.
func (t *procTable) find(inode uint64, uid int) (*registry.Process, string) {
	want := []byte("socket:[" + strconv.FormatUint(inode, 10) + "]")
	denied := false
	tried := make(map[int]bool, candidates)
	for _, e := range t.candidates() {
		tried[e.pid] = true
		p, res := t.search(e.pid, want, e.fds, e)
		switch res {
		case searchFound:
			t.r.hits.Add(1)
			return t.withUID(p, uid), ""
		case searchDenied:
			denied = true
		case searchGone:
			t.forget(e)
		}
	}
	t.r.scans.Add(1)
	for _, pid := range t.allPIDs(uid) {
		if tried[pid] {
			continue
		}
		p, res := t.search(pid, want, nil, nil)
		switch res {
		case searchFound:
			return t.withUID(p, uid), ""
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

// search looks for the link want among pid's open files, trying the fd
// numbers in hint first. cached is what the cache knew of pid (or nil).
func (t *procTable) search(pid int, want []byte, hint []int, cached *procEntry) (*registry.Process, searchResult) {
	dir, err := unix.Open("/proc/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, resultOf(err)
	}
	defer unix.Close(dir)
	fdDir, err := unix.Openat(dir, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, resultOf(err)
	}
	defer unix.Close(fdDir)
	var link [64]byte
	holds := func(fd string) bool {
		n, err := unix.Readlinkat(fdDir, fd, link[:])
		return err == nil && bytes.Equal(link[:n], want)
	}
	fd := -1
	for _, h := range hint {
		if holds(strconv.Itoa(h)) {
			fd = h
			break
		}
	}
	if fd < 0 {
		names, err := readNames(fdDir, maxFDs)
		if err != nil {
			return nil, resultOf(err)
		}
		for _, name := range names {
			if holds(name) {
				fd, _ = strconv.Atoi(name)
				break
			}
		}
	}
	if fd < 0 {
		return nil, searchMissing
	}
	st, err := readStat(dir)
	if err != nil {
		return nil, resultOf(err)
	}
	var e *procEntry
	if cached != nil && cached.start == st.start {
		e = cached
	} else {
		e = &procEntry{pid: pid, start: st.start, proc: t.identity(dir, pid, st)}
	}
	// Still holding it after everything was read through dir: alive all
	// along, so what was read is about the process that holds the socket.
	if !holds(strconv.Itoa(fd)) {
		return nil, searchGone
	}
	return t.remember(e, fd), searchFound
}

// identity reads what a person is shown about a process.
func (t *procTable) identity(dir, pid int, st procStat) registry.Process {
	path := readLink(dir, "exe")
	p := registry.Process{PID: pid, Path: path, PPID: st.ppid, Name: displayName(st.comm, path)}
	if st.ppid > 0 {
		if pdir, err := unix.Open("/proc/"+strconv.Itoa(st.ppid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			if pst, err := readStat(pdir); err == nil {
				p.ParentName = displayName(pst.comm, readLink(pdir, "exe"))
			}
			_ = unix.Close(pdir) // read-only
		}
	}
	return p
}

// displayName is the kernel's name of the process (comm, what ps and top
// show, which a program may set), unless the kernel cut it at 15 bytes:
// then the executable's name it is the start of ("git-remote-https").
func displayName(comm, path string) string {
	base := filepath.Base(path)
	if comm == "" || (len(comm) == 15 && path != "" && len(base) > 15 && base[:15] == comm) {
		if path != "" {
			return base
		}
	}
	return comm
}

func (t *procTable) withUID(p *registry.Process, uid int) *registry.Process {
	c := *p
	c.UID = uid
	c.User = t.user(uid)
	return &c
}

func (t *procTable) user(uid int) string {
	if uid < 0 {
		return ""
	}
	t.mu.Lock()
	name, ok := t.users[uid]
	t.mu.Unlock()
	if ok {
		return name
	}
	if u, err := userLookupID(uid); err == nil {
		name = u
	}
	t.mu.Lock()
	if len(t.users) < 1024 {
		t.users[uid] = name
	}
	t.mu.Unlock()
	return name
}

func (t *procTable) candidates() []*procEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := min(len(t.recent), candidates)
	return slices.Clone(t.recent[:n])
}

// remember puts e first in the cache, with fd first among its hints, and
// returns its process. It replaces any entry of the same pid (an older
// process when the pid was reused). Entries are never modified once
// published: a change is a new entry.
func (t *procTable) remember(e *procEntry, fd int) *registry.Process {
	t.mu.Lock()
	defer t.mu.Unlock()
	fds := append([]int{fd}, slices.DeleteFunc(slices.Clone(e.fds), func(x int) bool { return x == fd })...)
	ne := &procEntry{pid: e.pid, start: e.start, proc: e.proc, fds: fds[:min(len(fds), hintFDs)]}
	t.recent = slices.DeleteFunc(t.recent, func(x *procEntry) bool { return x.pid == e.pid })
	t.recent = slices.Insert(t.recent, 0, ne)
	if len(t.recent) > cachedProcs {
		t.recent = t.recent[:cachedProcs]
	}
	return &ne.proc
}

func (t *procTable) forget(e *procEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recent = slices.DeleteFunc(t.recent, func(x *procEntry) bool { return x == e })
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

// readNames lists a directory (at most max entries), without sorting.
func readNames(fd int, max int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	buf := make([]byte, 16<<10)
	var names []string
	for len(names) < max {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], max-len(names), names)
	}
	return names, nil
}

func readLink(dir int, name string) string {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

type procStat struct {
	comm  string
	ppid  int
	start uint64
}

func readStat(dir int) (procStat, error) {
	fd, err := unix.Openat(dir, "stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return procStat{}, err
	}
	defer unix.Close(fd)
	var buf [1024]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return procStat{}, err
	}
	return parseStat(buf[:n])
}

var errBadStat = errors.New("malformed /proc/<pid>/stat")

// parseStat reads comm (field 2, in parentheses, may itself hold spaces and
// parentheses: it ends at the last ')'), ppid (4) and starttime (22).
func parseStat(b []byte) (procStat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, errBadStat
	}
	f := bytes.Fields(b[end+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return procStat{}, errBadStat
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	start, err2 := strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, errBadStat
	}
	return procStat{comm: string(b[open+1 : end]), ppid: ppid, start: start}, nil
}
