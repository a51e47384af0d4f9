package procinfo

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"porthole/core/registry"
)

// Windows: the owner-pid TCP tables (GetExtendedTcpTable, read by
// tcptable.go) name the process that owns the client's socket directly;
// process_windows.go says who that process is.

// x/sys/windows does not wrap GetExtendedTcpTable.
var procGetExtendedTcpTable = windows.NewLazySystemDLL("iphlpapi.dll").NewProc("GetExtendedTcpTable")

const (
	tcpTableOwnerPIDAll = 5 // TCP_TABLE_OWNER_PID_ALL
	// tableTries bounds the ask-for-the-size-and-retry loop: sockets opened
	// between two calls can make the table outgrow the size just given.
	tableTries = 4
	// tableSlack is room (bytes) added to the size Windows asks for, for
	// sockets opened meanwhile (~80 IPv6 rows).
	tableSlack = 4096
	// maxTableBytes bounds a table (a million IPv4 sockets): beyond it the
	// lookup gives up rather than grow without end.
	maxTableBytes = 24 << 20
	// initialTable is a pooled buffer's first size (words): a desktop's
	// few hundred sockets fit.
	initialTable = 16 << 10 / 4
	// recheckWithin: a process created this shortly before the table was
	// read may have a coarse creation stamp (the system clock's tick) that
	// hides a pid reused just after the read; for it the table is read once
	// more to see that the socket is still that pid's.
	recheckWithin = 100 * time.Millisecond
)

var errTableTooBig = errors.New("tcp table: larger than the bound")

type windowsResolver struct {
	findErr error // GetExtendedTcpTable is missing: nothing to look up with
	bufs    sync.Pool
	procs   *winProcCache
}

func newOSResolver(r *Resolver) osResolver {
	w := &windowsResolver{findErr: procGetExtendedTcpTable.Find(), procs: newWinProcCache(r)}
	w.bufs.New = func() any {
		b := make([]uint32, initialTable) // uint32: the table's DWORD alignment
		return &b
	}
	return w
}

func (w *windowsResolver) lookup(local, remote netip.AddrPort) *registry.Process {
	if w.findErr != nil {
		return unknown(ReasonUnsupported, -1)
	}
	// The client's socket: its own end is our remote, its peer our local.
	self, peer := remote, local
	read := time.Now()
	pid, why := w.owner(self, peer)
	if why != "" {
		return unknown(why, -1)
	}
	p, created := w.procs.find(pid, read)
	if p.Known() && read.Sub(created) < recheckWithin {
		// A young process: see the socket is still its own, so that a pid
		// reused inside the clock's tick is not taken for the owner.
		if again, why := w.owner(self, peer); why != "" || again != pid {
			return unknown(ReasonExited, -1)
		}
	}
	return p
}

// owner is the pid that owns the socket self->peer, or why it is unknown.
func (w *windowsResolver) owner(self, peer netip.AddrPort) (uint32, string) {
	families := []uint32{windows.AF_INET6}
	if self.Addr().Is4() && peer.Addr().Is4() {
		// An IPv4 socket, or a dual-stack IPv6 one connected over IPv4
		// (then in the IPv6 table with v4-mapped addresses).
		families = []uint32{windows.AF_INET, windows.AF_INET6}
	}
	for _, af := range families {
		m, err := w.search(af, self, peer)
		switch {
		case err != nil:
			return 0, ReasonFailed
		case m.ambiguous:
			return 0, ReasonFailed // never pick one of two owners
		case m.rows > 0 && m.pid == 0:
			return 0, ReasonExited // TIME_WAIT: its owner closed it
		case m.rows > 0:
			return m.pid, ""
		}
	}
	return 0, ReasonExited // gone before we asked
}

// search reads one family's table and finds the socket in it.
func (w *windowsResolver) search(af uint32, self, peer netip.AddrPort) (tcpMatch, error) {
	bp := w.bufs.Get().(*[]uint32)
	defer w.bufs.Put(bp)
	for range tableTries {
		buf := *bp
		size := uint32(len(buf) * 4)
		r1, _, _ := procGetExtendedTcpTable.Call(
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)),
			0, uintptr(af), tcpTableOwnerPIDAll, 0)
		switch err := windows.Errno(r1); {
		case err == windows.ERROR_SUCCESS:
			n := min(int(size), len(buf)*4)
			return findTCPOwner(unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), n), af == windows.AF_INET6, self, peer)
		case err == windows.ERROR_INSUFFICIENT_BUFFER:
			if size > maxTableBytes {
				return tcpMatch{}, errTableTooBig
			}
			*bp = make([]uint32, (int(size)+tableSlack)/4)
		default:
			return tcpMatch{}, fmt.Errorf("GetExtendedTcpTable: %w", err)
		}
	}
	return tcpMatch{}, fmt.Errorf("GetExtendedTcpTable: still growing after %d tries", tableTries)
}

func (w *windowsResolver) close() error { return nil }
