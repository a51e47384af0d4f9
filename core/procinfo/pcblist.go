package procinfo

// macOS's TCP socket table (sysctl net.inet.tcp.pcblist_n) and process
// records (sysctl kern.procargs2), parsed here without system calls so that
// the parsing is unit-tested on any OS (procinfo_darwin.go does the I/O).
//
// pcblist_n is an xinpgen header, then per connection a run of records
// (xinpcb_n, xsocket_n, xsockbuf_n twice, xsockstat_n, xtcpcb_n), each
// starting with its length and kind and padded to 8 bytes, then a closing
// xinpgen. The records are declared under #pragma pack(4) in xnu
// (bsd/netinet/in_pcb.h, bsd/sys/socketvar.h, bsd/netinet/tcp_var.h), so
// their 64-bit fields sit on 4-byte boundaries; the offsets below follow
// from that. Both macOS architectures (amd64, arm64) are little-endian;
// ports are in network byte order.

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"path"
	"strings"
)

var (
	// errPCBMalformed: the table does not parse (truncated, bad lengths).
	errPCBMalformed = errors.New("pcblist_n: malformed table")
	// errProcArgs: kern.procargs2 does not parse.
	errProcArgs = errors.New("procargs2: malformed")
)

const (
	xinpgenSize = 24 // u32 xig_len, u32 xig_count, u64 xig_gen, u64 xig_sogen

	xsoSocket = 0x001 // XSO_SOCKET: xsocket_n
	xsoInpcb  = 0x010 // XSO_INPCB: xinpcb_n

	// xinpcb_n (pack 4): xi_len 0, xi_kind 4, xi_inpp 8, inp_fport 16,
	// inp_lport 18, inp_ppcb 20, inp_gencnt 28, inp_flags 36, inp_flow 40,
	// inp_vflag 44, inp_ip_ttl 45, inp_ip_p 46, inp_dependfaddr 48..64,
	// inp_dependladdr 64..80 (each a union of in6_addr and in_addr_4in6,
	// whose IPv4 address is its last 4 bytes), then the v4/v6 options;
	// 104 bytes in all.
	inpFport  = 16
	inpLport  = 18
	inpVflag  = 44
	inpFaddr  = 48
	inpLaddr  = 64
	inpMinLen = 80 // through inp_dependladdr

	inpIPv4 = 0x1 // INP_IPV4
	inpIPv6 = 0x2 // INP_IPV6

	// xsocket_n (pack 4): xso_len 0, xso_kind 4, xso_so 8, so_type 16,
	// so_options 20, so_linger 24, so_state 26, so_pcb 28, xso_protocol 36,
	// xso_family 40, so_qlen 44, so_incqlen 46, so_qlimit 48, so_timeo 50,
	// so_error 52, so_pgid 56, so_oobmark 60, so_uid 64, so_last_pid 68,
	// so_e_pid 72 (76 bytes; newer kernels append so_gencnt and flags).
	soUID     = 64
	soLastPID = 68
	soMinLen  = 76 // through so_e_pid
)

// pcbConn is one connection of the table: its two ends, and the process
// and user that own its socket.
type pcbConn struct {
	local, foreign netip.AddrPort
	pid, uid       int
}

// parsePCBList returns every connection of a pcblist_n table. A table
// that does not end in its closing xinpgen is malformed: it was cut, and
// what is missing could be the socket sought (or a second one like it).
func parsePCBList(b []byte) ([]pcbConn, error) {
	if len(b) < xinpgenSize {
		return nil, errPCBMalformed
	}
	if binary.LittleEndian.Uint32(b) != xinpgenSize {
		return nil, errPCBMalformed
	}
	var (
		out     []pcbConn
		cur     pcbConn
		haveInp bool
		haveSo  bool
	)
	flush := func() {
		if haveInp && haveSo {
			out = append(out, cur)
		}
		cur, haveInp, haveSo = pcbConn{}, false, false
	}
	// Every record is longer than an xinpgen, so each step advances at
	// least that far: the loop ends within len(b)/xinpgenSize steps.
	for off := xinpgenSize; off+8 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		kind := binary.LittleEndian.Uint32(b[off+4:])
		if n <= xinpgenSize {
			// The closing xinpgen (xnu's netstat stops the same way).
			if off+xinpgenSize > len(b) || n != xinpgenSize {
				return nil, errPCBMalformed
			}
			flush()
			return out, nil
		}
		if n > len(b)-off {
			return nil, errPCBMalformed
		}
		rec := b[off : off+n]
		switch kind {
		case xsoInpcb:
			flush() // a new connection starts
			c, ok := parseInpcb(rec)
			if !ok {
				return nil, errPCBMalformed
			}
			cur, haveInp = c, true
		case xsoSocket:
			if !haveInp || haveSo || n < soMinLen {
				return nil, errPCBMalformed
			}
			cur.uid = int(binary.LittleEndian.Uint32(rec[soUID:]))
			cur.pid = int(int32(binary.LittleEndian.Uint32(rec[soLastPID:])))
			haveSo = true
		}
		off += pcbAlign(n)
	}
	return nil, errPCBMalformed // no closing xinpgen
}

// parseInpcb reads the two ends of an xinpcb_n.
func parseInpcb(rec []byte) (pcbConn, bool) {
	if len(rec) < inpMinLen {
		return pcbConn{}, false
	}
	var faddr, laddr netip.Addr
	switch vflag := rec[inpVflag]; {
	case vflag&inpIPv4 != 0:
		faddr = netip.AddrFrom4([4]byte(rec[inpFaddr+12 : inpFaddr+16]))
		laddr = netip.AddrFrom4([4]byte(rec[inpLaddr+12 : inpLaddr+16]))
	case vflag&inpIPv6 != 0:
		faddr = netip.AddrFrom16([16]byte(rec[inpFaddr : inpFaddr+16])).Unmap()
		laddr = netip.AddrFrom16([16]byte(rec[inpLaddr : inpLaddr+16])).Unmap()
	default:
		return pcbConn{}, false
	}
	return pcbConn{
		foreign: netip.AddrPortFrom(faddr, binary.BigEndian.Uint16(rec[inpFport:])),
		local:   netip.AddrPortFrom(laddr, binary.BigEndian.Uint16(rec[inpLport:])),
	}, true
}

// findPCB returns the one connection of the table whose own end is own
// and whose peer is peer: errNoSocket when there is none, errAmbiguous
// when there are several (no guess between them).
func findPCB(b []byte, own, peer netip.AddrPort) (pcbConn, error) {
	conns, err := parsePCBList(b)
	if err != nil {
		return pcbConn{}, err
	}
	var found []pcbConn
	for _, c := range conns {
		if sameEnd(c.local, own) && sameEnd(c.foreign, peer) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return pcbConn{}, errNoSocket
	case 1:
		return found[0], nil
	default:
		return pcbConn{}, errAmbiguous
	}
}

func pcbAlign(n int) int { return (n + 7) &^ 7 }

// parseProcArgs2 returns the executable path of a kern.procargs2 answer:
// an int32 argc, then the path the process was started from, NUL-ended
// (then padding, argv and the environment, which are not read).
func parseProcArgs2(b []byte) (string, error) {
	if len(b) < 4 {
		return "", errProcArgs
	}
	rest := b[4:]
	end := strings.IndexByte(string(rest), 0)
	if end <= 0 {
		return "", errProcArgs
	}
	return string(rest[:end]), nil
}

// maxComLen is the kernel's limit on p_comm (MAXCOMLEN).
const maxComLen = 16

// commName is the kernel's name of a process (p_comm, NUL-padded), unless
// the kernel cut it at MAXCOMLEN bytes: then the executable's name it is
// the start of.
func commName(comm []byte, exe string) string {
	if i := strings.IndexByte(string(comm), 0); i >= 0 {
		comm = comm[:i]
	}
	name := string(comm)
	if base := path.Base(exe); len(name) >= maxComLen && exe != "" && strings.HasPrefix(base, name) {
		return base
	}
	if name == "" && exe != "" {
		return path.Base(exe)
	}
	return name
}
