package procinfo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socketInode is N of a link "socket:[N]", or 0 for anything else.
func socketInode(link []byte) uint64 {
	const prefix = "socket:["
	if len(link) < len(prefix)+2 || string(link[:len(prefix)]) != prefix || link[len(link)-1] != ']' {
		return 0
	}
	digits := link[len(prefix) : len(link)-1]
	if digits[0] == '0' {
		return 0 // not how the kernel writes numbers (and 0 is no inode)
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// listingBuf is the memory of one listing, reused: a busy program's
// listing is thousands of numbers, and a burst of lookups would otherwise
// leave megabytes of garbage behind (memory the process keeps a while).
type listingBuf struct {
	dirents [8 << 10]byte
	fds     []int
}

var listingPool = sync.Pool{New: func() any { return new(listingBuf) }}

func (lb *listingBuf) put() {
	if cap(lb.fds) > 1<<16 {
		lb.fds = nil // one huge program's: not kept
	}
	listingPool.Put(lb)
}

// readFDs lists a /proc/<pid>/fd directory's numbers (at most max),
// parsing the entries in place: a busy program has thousands.
func readFDs(fd int, max int, lb *listingBuf) ([]int, error) {
	fds := lb.fds[:0]
	defer func() { lb.fds = fds[:0] }()
	err := readDirents(fd, lb.dirents[:], func(b []byte) bool {
		fds = appendDirentNumbers(fds, b, max)
		return len(fds) < max
	})
	if err != nil {
		return nil, err
	}
	return fds, nil
}

// readDirents reads directory fd from its start, one getdents batch into
// buf at a time, and hands each to add until add says it has enough or
// the directory ends.
func readDirents(fd int, buf []byte, add func(batch []byte) (more bool)) error {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return err
	}
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 || !add(buf[:n]) {
			return nil
		}
	}
}

// appendDirentNumbers appends the names of linux_dirent64 records that
// are decimal numbers ("." and ".." are not).
func appendDirentNumbers(fds []int, b []byte, max int) []int {
	const nameOff = 19 // d_ino 8, d_off 8, d_reclen 2, d_type 1
	for len(b) >= nameOff && len(fds) < max {
		reclen := int(binary.NativeEndian.Uint16(b[16:]))
		if reclen < nameOff || reclen > len(b) {
			break
		}
		name := b[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if n, ok := decimal(name); ok {
			fds = append(fds, n)
		}
		b = b[reclen:]
	}
	return fds
}

// decimal parses a non-negative decimal number of at most 9 digits.
func decimal(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// readNames lists a directory (at most max entries), without sorting.
func readNames(fd int, max int) ([]string, error) {
	var names []string
	if max <= 0 {
		return names, nil
	}
	err := readDirents(fd, make([]byte, 16<<10), func(b []byte) bool {
		_, _, names = unix.ParseDirent(b, max-len(names), names)
		return len(names) < max
	})
	if err != nil {
		return nil, err
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

// readlinkFD is readlinkat(fdDir, "<fd>") with the name built on the
// stack: a cache hit reads one link, and unix.Readlinkat would allocate
// its name.
func readlinkFD(fdDir, fd int, buf []byte) (int, error) {
	if fd < 0 || len(buf) == 0 {
		return 0, unix.EINVAL
	}
	var name [24]byte
	b := strconv.AppendInt(name[:0], int64(fd), 10)
	b = append(b, 0)
	n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, uintptr(fdDir), uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
