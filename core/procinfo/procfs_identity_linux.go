package procinfo

import (
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"porthole/core/registry"
)

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
		// The parent was opened by number: if it exited meanwhile, its pid
		// may be another process's. A child is given a new parent before
		// its old parent's pid is freed, so an unchanged ppid, read after
		// the parent, means the parent read was the real one.
		if again, err := readStat(dir); err != nil || again.ppid != st.ppid {
			p.ParentName = ""
			if err == nil {
				p.PPID = again.ppid
			}
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

func (t *procTable) withUID(p registry.Process, uid int) *registry.Process {
	p.UID = uid
	p.User = t.user(uid)
	return &p
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

// stillSameProgram is sameProgram, shared by the lookups of connections
// accepted before a check began (since: the Resolver's mark at accept; 0
// when unknown). A check that began after the connection was accepted
// already tells what this one would: an exec before the accept made it
// fail, and a program running after the accept is one that held the
// connection. So one executable-link read serves a burst of connections
// of a busy program, and a connection accepted after an exec is never
// named for the program before it.
func (e *procEntry) stillSameProgram(dir int, r *Resolver, since uint64) bool {
	if since != 0 && e.verified.Load() > since {
		r.sharedChecks.Add(1)
		return true
	}
	m := r.Mark()
	if !e.sameProgram(dir) {
		return false
	}
	for {
		v := e.verified.Load()
		if v >= m || e.verified.CompareAndSwap(v, m) {
			return true
		}
	}
}

// sameProgram reports whether the process e's directory pins still runs
// the program e's identity was read about. The directory stays valid
// across execve, so a launcher that connected and then exec'd another
// program would otherwise be named for its old self: its executable link
// says which program it is now (its comm, when the link was unreadable).
func (e *procEntry) sameProgram(dir int) bool {
	if e.proc.Path == "" {
		st, err := readStat(dir)
		return err == nil && displayName(st.comm, "") == e.proc.Name
	}
	var buf [256]byte
	n, err := unix.Readlinkat(dir, "exe", buf[:])
	if err != nil {
		return false
	}
	if n == len(buf) { // longer than the buffer: read it whole
		return readLink(dir, "exe") == e.proc.Path
	}
	return string(buf[:n]) == e.proc.Path
}
