package procinfo

// Linux's sock_diag (netlink NETLINK_SOCK_DIAG, message SOCK_DIAG_BY_FAMILY)
// request and answer, built and checked here without system calls so that
// the checks are unit-tested on any OS (procinfo_linux.go does the I/O).
// Layouts: linux/netlink.h (nlmsghdr), linux/inet_diag.h (inet_diag_req_v2,
// inet_diag_msg, inet_diag_sockid). Ports and addresses are in network
// order, everything else in the host's.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

const (
	nlmsgHdrLen      = 16
	nlmsgError       = 2
	nlmsgDone        = 3
	nlmFRequest      = 0x1
	sockDiagByFamily = 20
	diagReqLen       = 56 // inet_diag_req_v2
	diagMsgLen       = 72 // inet_diag_msg
	afInet           = 2
	afInet6          = 10
	ipprotoTCP       = 6
	diagNoCookie     = 0xffffffff
	// Every TCP state (1 << TCP_ESTABLISHED ... 1 << TCP_NEW_SYN_RECV): a
	// client that already sent FIN is still the client.
	diagAllStates = 0xfff
)

var (
	// errNoSocket: the kernel has no socket with this 4-tuple (ENOENT).
	errNoSocket = errors.New("sock_diag: no such socket")
	// errForged: an answer to our request that is not about the socket we
	// asked for, or is malformed. Its inode and uid are not trusted.
	errForged = errors.New("sock_diag: answer does not match the request")
	// errAmbiguous: more than one socket answered.
	errAmbiguous = errors.New("sock_diag: several sockets answered")
)

// diagQuery names the client's socket: src is its local end (the client's
// address), dst its peer (the proxy's address).
type diagQuery struct {
	src, dst netip.AddrPort
	seq      uint32
}

// family is the table the kernel searches: AF_INET for IPv4 (its exact
// lookup also finds dual-stack AF_INET6 sockets connected over IPv4, which
// then answer with family AF_INET6 and v4-mapped addresses), AF_INET6
// otherwise.
func (q diagQuery) family() uint8 {
	if q.src.Addr().Unmap().Is4() && q.dst.Addr().Unmap().Is4() {
		return afInet
	}
	return afInet6
}

// request is the netlink message asking for exactly q's socket (no dump).
func (q diagQuery) request() []byte { return q.appendRequest(nil) }

// appendRequest appends the request to b (a reused buffer: no allocation).
func (q diagQuery) appendRequest(buf []byte) []byte {
	const n = nlmsgHdrLen + diagReqLen
	buf = append(buf, make([]byte, n)...) // zeroed, as the padding must be
	b := buf[len(buf)-n:]
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], n)
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint16(b[6:], nlmFRequest)
	ne.PutUint32(b[8:], q.seq)
	// b[12:16] port id 0: the kernel fills in ours.
	r := b[nlmsgHdrLen:]
	fam := q.family()
	r[0], r[1] = fam, ipprotoTCP
	ne.PutUint32(r[4:], diagAllStates)
	putSockID(r[8:56], fam, q.src, q.dst)
	return buf
}

// putSockID writes an inet_diag_sockid (48 bytes) with no interface and no
// cookie (the 4-tuple alone selects the socket).
func putSockID(id []byte, fam uint8, src, dst netip.AddrPort) {
	binary.BigEndian.PutUint16(id[0:], src.Port())
	binary.BigEndian.PutUint16(id[2:], dst.Port())
	putAddr(id[4:20], fam, src.Addr())
	putAddr(id[20:36], fam, dst.Addr())
	binary.NativeEndian.PutUint32(id[36:], 0)
	binary.NativeEndian.PutUint32(id[40:], diagNoCookie)
	binary.NativeEndian.PutUint32(id[44:], diagNoCookie)
}

func putAddr(b []byte, fam uint8, a netip.Addr) {
	if fam == afInet {
		v4 := a.Unmap().As4()
		copy(b, v4[:])
		return
	}
	v6 := a.As16() // an IPv4 address becomes v4-mapped
	copy(b, v6[:])
}

// diagAnswer is what a checked answer tells.
type diagAnswer struct {
	state uint8
	uid   uint32
	inode uint32 // 0: no file refers to the socket any more (owner exited)
}

// parseDiagAnswer reads one datagram from the kernel in reply to q on the
// netlink socket with port id portID. It returns done=false when the
// datagram held only stale messages (another sequence number: the answer
// to an earlier request that timed out), so the caller reads the next one.
// An answer is trusted only if it is for our port and sequence number, has
// the layout of an inet_diag_msg, and names exactly the socket asked for:
// same addresses (v4-mapped ones compared as IPv4) and same ports. Anything
// else is errForged.
func parseDiagAnswer(b []byte, q diagQuery, portID uint32) (ans diagAnswer, done bool, err error) {
	ne := binary.NativeEndian
	found := false
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return diagAnswer{}, true, fmt.Errorf("%w: %d bytes left, short header", errForged, len(b))
		}
		n := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		seq := ne.Uint32(b[8:])
		pid := ne.Uint32(b[12:])
		if n < nlmsgHdrLen || n > len(b) {
			return diagAnswer{}, true, fmt.Errorf("%w: message length %d of %d", errForged, n, len(b))
		}
		data := b[nlmsgHdrLen:n]
		b = b[min(nlmAlign(n), len(b)):]
		if seq != q.seq {
			continue // stale
		}
		if pid != portID {
			return diagAnswer{}, true, fmt.Errorf("%w: for port %d, not ours (%d)", errForged, pid, portID)
		}
		switch typ {
		case nlmsgError:
			if len(data) < 4 {
				return diagAnswer{}, true, fmt.Errorf("%w: short error message", errForged)
			}
			switch errno := -int32(ne.Uint32(data)); errno {
			case 0: // an acknowledgement
				done = true
			case 2: // ENOENT
				return diagAnswer{}, true, errNoSocket
			default:
				return diagAnswer{}, true, fmt.Errorf("sock_diag: errno %d", errno)
			}
		case nlmsgDone:
			done = true
		case sockDiagByFamily:
			a, err := checkDiagMsg(data, q)
			if err != nil {
				return diagAnswer{}, true, err
			}
			if found {
				return diagAnswer{}, true, errAmbiguous
			}
			ans, found, done = a, true, true
		default:
			return diagAnswer{}, true, fmt.Errorf("%w: message type %d", errForged, typ)
		}
	}
	if done && !found {
		return diagAnswer{}, true, errNoSocket
	}
	return ans, done, nil
}

// checkDiagMsg parses an inet_diag_msg and checks that it is about q's
// socket.
func checkDiagMsg(m []byte, q diagQuery) (diagAnswer, error) {
	if len(m) < diagMsgLen {
		return diagAnswer{}, fmt.Errorf("%w: inet_diag_msg of %d bytes", errForged, len(m))
	}
	fam := m[0]
	if fam != afInet && fam != afInet6 {
		return diagAnswer{}, fmt.Errorf("%w: family %d", errForged, fam)
	}
	id := m[4:52]
	src := netip.AddrPortFrom(readAddr(id[4:20], fam), binary.BigEndian.Uint16(id[0:]))
	dst := netip.AddrPortFrom(readAddr(id[20:36], fam), binary.BigEndian.Uint16(id[2:]))
	if !sameEnd(src, q.src) || !sameEnd(dst, q.dst) {
		return diagAnswer{}, fmt.Errorf("%w: answer is %v -> %v, asked %v -> %v", errForged, src, dst, q.src, q.dst)
	}
	ne := binary.NativeEndian
	return diagAnswer{state: m[1], uid: ne.Uint32(m[64:]), inode: ne.Uint32(m[68:])}, nil
}

func readAddr(b []byte, fam uint8) netip.Addr {
	if fam == afInet {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16([16]byte(b[:16]))
}

// sameEnd compares socket ends, a v4-mapped address equal to its IPv4
// form (a dual-stack socket reports the mapped one). Zones are ignored:
// the kernel does not report them.
func sameEnd(a, b netip.AddrPort) bool {
	return a.Port() == b.Port() && a.Addr().Unmap().WithZone("") == b.Addr().Unmap().WithZone("")
}

func nlmAlign(n int) int { return (n + 3) &^ 3 }
