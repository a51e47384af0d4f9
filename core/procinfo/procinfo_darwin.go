package procinfo

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"

	"porthole/core/registry"
)

// macOS: the kernel's table of TCP sockets (sysctl net.inet.tcp.pcblist_n)
// names each socket's ends and the last process that used it; kern.proc.pid
// and kern.procargs2 describe that process (what proc_pidpath reads, without
// libproc and cgo). The table is parsed in pcblist.go.

// pcbReads bounds the reads of a table that grew between sizing and reading.
const pcbReads = 3

type darwinResolver struct{}

func newOSResolver(*Resolver) osResolver { return darwinResolver{} }

func (darwinResolver) lookup(local, remote netip.AddrPort) *registry.Process {
	table, err := readPCBList()
	if err != nil {
		return unknown(ReasonFailed, -1)
	}
	// The client's socket: its own end is our remote, its peer our local.
	c, err := findPCB(table, remote, local)
	switch {
	case errors.Is(err, errNoSocket):
		return unknown(ReasonExited, -1) // gone before we asked
	case err != nil:
		return unknown(ReasonFailed, -1) // malformed or ambiguous: no guess
	case c.pid <= 0:
		return unknown(ReasonNotFound, c.uid)
	}
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", c.pid)
	if err != nil {
		// No such process any more (the kernel answers nothing: EIO), or
		// it may not be looked at.
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return unknown(ReasonNoPermission, c.uid)
		}
		return unknown(ReasonExited, c.uid)
	}
	if int(kp.Proc.P_pid) != c.pid {
		return unknown(ReasonExited, c.uid)
	}
	exe := procPath(c.pid) // "" for another user's process unless root
	p := &registry.Process{
		PID:  c.pid,
		Path: exe,
		Name: commName(kp.Proc.P_comm[:], exe),
		UID:  c.uid,
		PPID: int(kp.Eproc.Ppid),
	}
	if p.PPID > 0 {
		if pp, err := unix.SysctlKinfoProc("kern.proc.pid", p.PPID); err == nil && int(pp.Proc.P_pid) == p.PPID {
			p.ParentName = commName(pp.Proc.P_comm[:], procPath(p.PPID))
		}
	}
	if u, err := userLookupID(c.uid); err == nil {
		p.User = u
	}
	return p
}

func (darwinResolver) close() error { return nil }

// readPCBList reads the TCP socket table, again when it outgrew the size
// the kernel first gave (ENOMEM).
func readPCBList() ([]byte, error) {
	var err error
	for range pcbReads {
		var b []byte
		b, err = unix.SysctlRaw("net.inet.tcp.pcblist_n")
		if !errors.Is(err, unix.ENOMEM) {
			return b, err
		}
	}
	return nil, err
}

// procPath is the executable of pid, "" when it cannot be read.
func procPath(pid int) string {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		return ""
	}
	exe, err := parseProcArgs2(b)
	if err != nil {
		return ""
	}
	return exe
}
