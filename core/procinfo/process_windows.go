package procinfo

import (
	"errors"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"porthole/core/registry"
)

// winProcCacheMax bounds the cache; when full it starts over.
const winProcCacheMax = 4096

// winProcCache remembers what was learnt about a process, keyed by pid and
// valid only for the same creation time: a reused pid is another process.
// Hits skip the image name, token and parent queries; the process is
// still opened to read its creation time.
type winProcCache struct {
	r  *Resolver
	mu sync.Mutex
	m  map[uint32]winProc
}

type winProc struct {
	created time.Time
	p       registry.Process
}

func newWinProcCache(r *Resolver) *winProcCache {
	return &winProcCache{r: r, m: make(map[uint32]winProc)}
}

// find describes pid, which owned the socket when the table was read at
// read; it also returns the process's creation time (zero when unknown).
func (c *winProcCache) find(pid uint32, read time.Time) (*registry.Process, time.Time) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return openFailed(pid, err), time.Time{}
	}
	defer closeHandle(h)
	created, err := creationTime(h)
	if err != nil {
		p := unknown(reasonOf(err), -1)
		p.PID = int(pid)
		return p, time.Time{}
	}
	if created.After(read) {
		// Born after the table named its pid: the owner exited and its pid
		// went to this process.
		return unknown(ReasonExited, -1), time.Time{}
	}
	c.mu.Lock()
	e, ok := c.m[pid]
	c.mu.Unlock()
	if ok && e.created.Equal(created) {
		c.r.hits.Add(1)
		p := e.p
		return &p, created
	}
	p := describe(h, pid, created)
	if p.Known() {
		c.mu.Lock()
		if len(c.m) >= winProcCacheMax {
			clear(c.m)
		}
		c.m[pid] = winProc{created: created, p: *p}
		c.mu.Unlock()
	}
	return p, created
}

// describe reads an open process's image, user and parent.
func describe(h windows.Handle, pid uint32, created time.Time) *registry.Process {
	p := &registry.Process{PID: int(pid), UID: -1} // Windows has SIDs, not uids
	path, err := imagePath(h)
	if err != nil {
		// Some processes (System, protected ones) hide their image even
		// from this access: the pid is known, the program is not.
		p.Unknown = reasonOf(err)
		return p
	}
	p.Path = path
	// The file name as Task Manager and tasklist show it: "firefox.exe".
	p.Name = filepath.Base(path)
	p.User = tokenUser(h) // "" when the token may not be read
	if ppid, ok := parentPID(h); ok && ppid != 0 {
		p.PPID = int(ppid)
		p.ParentName = parentName(ppid, created)
	}
	return p
}

// openFailed is the answer when pid cannot be opened.
func openFailed(pid uint32, err error) *registry.Process {
	if errors.Is(err, windows.ERROR_INVALID_PARAMETER) {
		return unknown(ReasonExited, -1) // no such process any more
	}
	p := unknown(reasonOf(err), -1)
	p.PID = int(pid)
	return p
}

func reasonOf(err error) string {
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return ReasonNoPermission
	}
	return ReasonFailed
}

func closeHandle(h windows.Handle) {
	_ = windows.CloseHandle(h) // a query handle: nothing to lose
}

func creationTime(h windows.Handle) (time.Time, error) {
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, created.Nanoseconds()), nil
}

// imagePath is the process's executable, e.g. C:\Program Files\...\firefox.exe.
func imagePath(h windows.Handle) (string, error) {
	// MAX_PATH covers nearly every program; a long path gets one retry.
	for _, size := range []int{windows.MAX_PATH, windows.MAX_LONG_PATH} {
		buf := make([]uint16, size)
		n := uint32(len(buf))
		err := windows.QueryFullProcessImageName(h, 0, &buf[0], &n)
		if errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) {
			continue
		}
		if err != nil {
			return "", err
		}
		return windows.UTF16ToString(buf[:n]), nil
	}
	return "", windows.ERROR_INSUFFICIENT_BUFFER
}

// tokenUser is the process's account as DOMAIN\name, "" when unreadable
// (another user's process without the privilege to look).
func tokenUser(h windows.Handle) string {
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return ""
	}
	defer func() { _ = tok.Close() }()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return ""
	}
	account, domain, _, err := tu.User.Sid.LookupAccount("")
	if err != nil {
		return tu.User.Sid.String() // a SID without a name is still who it is
	}
	if domain == "" {
		return account
	}
	return domain + `\` + account
}

// parentPID is the pid the process was started by (which may have exited
// since, and its pid been reused).
func parentPID(h windows.Handle) (uint32, bool) {
	var pbi windows.PROCESS_BASIC_INFORMATION
	err := windows.NtQueryInformationProcess(h, windows.ProcessBasicInformation,
		unsafe.Pointer(&pbi), uint32(unsafe.Sizeof(pbi)), nil)
	if err != nil {
		return 0, false
	}
	return uint32(pbi.InheritedFromUniqueProcessId), true
}

// parentName is the image name of ppid if it is still the parent: a
// process created after its child is a reuse of the parent's pid.
func parentName(ppid uint32, childCreated time.Time) string {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, ppid)
	if err != nil {
		return ""
	}
	defer closeHandle(h)
	created, err := creationTime(h)
	if err != nil || created.After(childCreated) {
		return ""
	}
	path, err := imagePath(h)
	if err != nil {
		return ""
	}
	return filepath.Base(path)
}
