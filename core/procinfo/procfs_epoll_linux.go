package procinfo

import (
	"bytes"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// A program with many connections at once (a browser, a Go program, an
// asyncio loop) waits on them with epoll, and the kernel shows every file
// registered with an epoll instance in /proc/<pid>/fdinfo/<epfd>, one line
// each: "tfd: <fd> events: ... ino:<inode, hex> sdev:...". One read of that
// file says which fd holds which socket for all of the program's
// connections at once: the lookups of a burst of new connections from one
// program share it (one read, then one readlinkat each to confirm),
// instead of each reading the program's fd links one by one until it
// finds its own.
//
// The index is only a hint: an epoll entry outlives its fd when the file
// was duplicated, and an epoll instance can be shared with another process,
// so every fd it names is confirmed by reading its link through the
// process's pinned /proc/<pid> directory before it is believed.

const (
	// maxEpolls is how many epoll instances of one process are read (a
	// program with one per thread has its network one among them).
	maxEpolls = 4
	// epollScanFDs is how many of a program's lowest fd numbers are read
	// to find its epoll instances: programs create them early.
	epollScanFDs = 32
	// epollReads bounds the reads of one fdinfo file (epollBuf each).
	epollReads = 64
	epollBuf   = 64 << 10
	// epollSmall is the most files a process may have for its epoll
	// instances to be reread before its remembered fds are tried: past it
	// a reread (about 0.1 µs a line) costs more than a few readlinkat, and
	// is left for when they failed, in place of a listing.
	epollSmall = 256
)

var eventpollLink = []byte("anon_inode:[eventpoll]")

// epollIndex is what a cached process's epoll instances say: socket inode
// to fd. Its files are open /proc/<pid>/fdinfo/<epfd> (opened through the
// pinned directory), reread with pread from offset 0, which makes the
// kernel write the list anew.
type epollIndex struct {
	mu         sync.Mutex
	discovered bool  // the process's low fds were searched for epoll instances
	epfds      []int // their fd numbers in the process
	files      []int // our open fdinfo files, one per epfd
	byIno      map[uint64]int
	large      bool // more than epollSmall files: reread only when hints failed
}

var epollBufPool = sync.Pool{New: func() any { return new([epollBuf]byte) }}

// find returns the fd on which one of the process's epoll instances has
// socket inode registered, rereading them (if reread) unless the last read
// had it; usable is false when the process has no epoll instance we can read (the
// caller then searches as it would without one). Lookups that arrive
// together wait for one another here, and the first one's read answers the
// others: their sockets existed when it read. With wait false (a lookup
// on the connection's own goroutine, which must not block for a reread of
// a big program's index by another lookup) it gives up, unusable, when
// another lookup holds the index.
func (x *epollIndex) find(dir int, inode uint64, reread, wait bool) (fd int, found, usable bool) {
	if !wait {
		if !x.mu.TryLock() {
			return -1, false, false
		}
	} else {
		x.mu.Lock()
	}
	defer x.mu.Unlock()
	if !x.discovered {
		x.discovered = true
		x.discover(dir)
	}
	if len(x.files) == 0 {
		return -1, false, false
	}
	if fd, ok := x.byIno[inode]; ok {
		return fd, true, true
	}
	if !reread {
		return -1, false, true
	}
	if !x.reread() {
		return -1, false, false
	}
	fd, ok := x.byIno[inode]
	return fd, ok, true
}

// forget drops inode from the index: its fd did not hold it (stale).
func (x *epollIndex) forget(inode uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.byIno, inode)
}

// reread reads every epoll file anew into byIno. false when none could be
// read (the process exited, or its epoll fds were closed): the index is
// then given up.
func (x *epollIndex) reread() bool {
	if x.byIno == nil {
		x.byIno = make(map[uint64]int)
	}
	clear(x.byIno)
	buf := epollBufPool.Get().(*[epollBuf]byte)
	defer epollBufPool.Put(buf)
	ok := 0
	for i := 0; i < len(x.files); {
		lines, err := readEpollInfo(x.files[i], buf[:], x.byIno)
		if err != nil || lines == 0 {
			// Exited, or the fd number is another file now: not an epoll
			// instance of this process any more.
			_ = unix.Close(x.files[i]) // read-only
			x.files = slices.Delete(x.files, i, i+1)
			x.epfds = slices.Delete(x.epfds, i, i+1)
			continue
		}
		ok++
		i++
	}
	x.large = len(x.byIno) > epollSmall
	return ok > 0
}

// small reports whether the process's epoll instances are cheap to reread
// (see epollSmall); true before the first look.
func (x *epollIndex) small() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return !x.large
}

// readEpollInfo reads one fdinfo file of an epoll instance into byIno
// (at most maxSnapshot entries) and returns how many tfd lines it had.
func readEpollInfo(f int, buf []byte, byIno map[uint64]int) (int, error) {
	lines := 0
	var off int64
	var carry int
	for range epollReads {
		n, err := unix.Pread(f, buf[carry:], off)
		if err != nil {
			return lines, err
		}
		if n <= 0 {
			break
		}
		off += int64(n)
		data := buf[:carry+n]
		// Whole lines only; a cut one is carried to the next read.
		end := bytes.LastIndexByte(data, '\n')
		if end < 0 {
			if carry+n == len(buf) {
				break // a line longer than the buffer: not the kernel's format
			}
			carry += n
			continue
		}
		lines += parseEpollInfo(data[:end+1], byIno)
		carry = copy(buf, data[end+1:])
		if len(byIno) >= maxSnapshot {
			break
		}
	}
	return lines, nil
}

// parseEpollInfo adds the "tfd: N ... ino:HEX" lines of b to byIno and
// returns how many there were.
func parseEpollInfo(b []byte, byIno map[uint64]int) int {
	lines := 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		fd, ino, ok := parseTFDLine(line)
		if !ok {
			continue
		}
		lines++
		if len(byIno) < maxSnapshot {
			byIno[ino] = fd
		}
	}
	return lines
}

// parseTFDLine parses "tfd:     7 events: 19 data: 7  pos:0 ino:3a2f sdev:9".
func parseTFDLine(line []byte) (fd int, ino uint64, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte("tfd:"))
	if !found {
		return 0, 0, false
	}
	rest = bytes.TrimLeft(rest, " ")
	i := bytes.IndexByte(rest, ' ')
	if i < 0 {
		return 0, 0, false
	}
	fd, ok = decimal(rest[:i])
	if !ok {
		return 0, 0, false
	}
	j := bytes.Index(rest, []byte(" ino:"))
	if j < 0 {
		return 0, 0, false
	}
	hex := rest[j+len(" ino:"):]
	if k := bytes.IndexByte(hex, ' '); k >= 0 {
		hex = hex[:k]
	}
	if len(hex) == 0 || len(hex) > 16 {
		return 0, 0, false
	}
	ino, err := strconv.ParseUint(string(hex), 16, 64)
	if err != nil || ino == 0 {
		return 0, 0, false
	}
	return fd, ino, true
}

// discover reads the links of the process's lowest fd numbers (without a
// listing: listing /proc/<pid>/fd costs about a microsecond per open file)
// and opens the fdinfo of the epoll instances among them. Called with
// x.mu held.
func (x *epollIndex) discover(dir int) {
	var link [64]byte
	for fd := range epollScanFDs {
		n, err := unix.Readlinkat(dir, fdPath(fd), link[:])
		if err == nil && bytes.Equal(link[:n], eventpollLink) {
			x.add(dir, fd)
		}
	}
}

// add opens the fdinfo of the process's epoll instance epfd. Called with
// x.mu held.
func (x *epollIndex) add(dir, epfd int) {
	if len(x.files) >= maxEpolls || slices.Contains(x.epfds, epfd) {
		return
	}
	f, err := unix.Openat(dir, "fdinfo/"+strconv.Itoa(epfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	x.files = append(x.files, f)
	x.epfds = append(x.epfds, epfd)
}

// close closes the fdinfo files. Called when no lookup uses the entry.
func (x *epollIndex) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, f := range x.files {
		_ = unix.Close(f) // read-only
	}
	x.files, x.epfds, x.byIno = nil, nil, nil
	x.discovered = true // never again: the entry is out of the cache
}

func fdPath(fd int) string { return "fd/" + strconv.Itoa(fd) }
