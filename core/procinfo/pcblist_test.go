package procinfo

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// packer lays a C struct out field by field the way xnu's #pragma pack(4)
// does (each field aligned to min(its size, 4)), so the tests derive the
// offsets from the struct declarations rather than from pcblist.go.
type packer struct{ b []byte }

func (p *packer) field(size int) []byte {
	al := min(size, 4)
	for len(p.b)%al != 0 {
		p.b = append(p.b, 0)
	}
	p.b = append(p.b, make([]byte, size)...)
	return p.b[len(p.b)-size:]
}

// align starts a nested struct whose widest member is 4 bytes or more.
func (p *packer) align() {
	for len(p.b)%4 != 0 {
		p.b = append(p.b, 0)
	}
}

func (p *packer) u8(v uint8)   { p.field(1)[0] = v }
func (p *packer) u16(v uint16) { binary.LittleEndian.PutUint16(p.field(2), v) }
func (p *packer) be16(v uint16) {
	binary.BigEndian.PutUint16(p.field(2), v) // ports: network byte order
}
func (p *packer) u32(v uint32) { binary.LittleEndian.PutUint32(p.field(4), v) }
func (p *packer) u64(v uint64) { binary.LittleEndian.PutUint64(p.field(8), v) }

// addr writes an inp_dependfaddr/laddr union: in6_addr, or in_addr_4in6
// (three pad words, then the IPv4 address).
func (p *packer) addr(a netip.Addr) {
	f := p.field(16)
	if a.Is4() {
		v4 := a.As4()
		copy(f[12:], v4[:])
		return
	}
	v6 := a.As16()
	copy(f, v6[:])
}

// done fixes the record's length (its first field) and returns it.
func (p *packer) done() []byte {
	binary.LittleEndian.PutUint32(p.b, uint32(len(p.b)))
	return p.b
}

// xinpcbN is struct xinpcb_n (bsd/netinet/in_pcb.h).
func xinpcbN(vflag uint8, local, foreign netip.AddrPort) []byte {
	var p packer
	p.u32(0)    // xi_len
	p.u32(0x10) // xi_kind XSO_INPCB
	p.u64(0xdead0001)
	p.be16(foreign.Port()) // inp_fport
	p.be16(local.Port())   // inp_lport
	p.u64(0xdead0002)      // inp_ppcb
	p.u64(7)               // inp_gencnt
	p.u32(0)               // inp_flags
	p.u32(0)               // inp_flow
	p.u8(vflag)            // inp_vflag
	p.u8(64)               // inp_ip_ttl
	p.u8(6)                // inp_ip_p
	p.addr(foreign.Addr()) // inp_dependfaddr
	p.addr(local.Addr())   // inp_dependladdr
	p.u8(0)                // inp_depend4.inp4_ip_tos
	p.align()              // struct inp_depend6 (holds an int)
	p.u8(0)                // inp6_hlim
	p.u32(0)               // inp6_cksum
	p.u16(0)               // inp6_ifindex
	p.u16(0)               // inp6_hops
	p.u32(0)               // inp_flowhash
	p.u32(0)               // inp_flags2
	return p.done()
}

// xsocketN is struct xsocket_n (bsd/sys/socketvar.h), with the fields newer
// kernels append when long is set.
func xsocketN(uid, pid uint32, long bool) []byte {
	var p packer
	p.u32(0)     // xso_len
	p.u32(0x001) // xso_kind XSO_SOCKET
	p.u64(0xbeef0001)
	p.u16(1)          // so_type SOCK_STREAM
	p.u32(0)          // so_options
	p.u16(0)          // so_linger
	p.u16(0)          // so_state
	p.u64(0xbeef0002) // so_pcb
	p.u32(6)          // xso_protocol
	p.u32(2)          // xso_family
	p.u16(0)          // so_qlen
	p.u16(0)          // so_incqlen
	p.u16(0)          // so_qlimit
	p.u16(0)          // so_timeo
	p.u16(0)          // so_error
	p.u32(0)          // so_pgid
	p.u32(0)          // so_oobmark
	p.u32(uid)        // so_uid
	p.u32(pid)        // so_last_pid
	p.u32(pid + 1000) // so_e_pid
	if long {
		p.u64(9) // so_gencnt
		p.u32(0) // so_flags
		p.u32(0) // so_flags1
		p.u32(1) // so_usecount
		p.u32(0) // so_retaincnt
		p.u32(0) // xso_filter_flags
	}
	return p.done()
}

// other is a record pcblist.go skips (xsockbuf_n, xsockstat_n, xtcpcb_n),
// of a size that needs padding.
func other(kind uint32, size int) []byte {
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b, uint32(size))
	binary.LittleEndian.PutUint32(b[4:], kind)
	return b
}

func xinpgen(count uint32) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b, 24)
	binary.LittleEndian.PutUint32(b[4:], count)
	return b
}

type testConn struct {
	vflag          uint8
	local, foreign string
	uid, pid       uint32
}

// table builds a pcblist_n answer as xnu's tcp_pcblist_n writes it.
func table(conns ...testConn) []byte {
	b := xinpgen(uint32(len(conns)))
	put := func(rec []byte) {
		b = append(b, rec...)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
	}
	for i, c := range conns {
		put(xinpcbN(c.vflag, netip.MustParseAddrPort(c.local), netip.MustParseAddrPort(c.foreign)))
		put(xsocketN(c.uid, c.pid, i%2 == 1))
		put(other(0x002, 28)) // xsockbuf_n rcv
		put(other(0x004, 28)) // xsockbuf_n snd
		put(other(0x008, 136))
		put(other(0x020, 212)) // xtcpcb_n
	}
	return append(b, xinpgen(uint32(len(conns)))...)
}

func TestPCBRecordLayout(t *testing.T) {
	// The sizes xnu's headers give, as a check on the packer.
	if n := len(xinpcbN(1, netip.MustParseAddrPort("1.2.3.4:5"), netip.MustParseAddrPort("1.2.3.4:6"))); n != 104 {
		t.Fatalf("xinpcb_n is %d bytes, want 104", n)
	}
	if n := len(xsocketN(0, 0, false)); n != 76 {
		t.Fatalf("xsocket_n is %d bytes, want 76", n)
	}
}

var (
	client = netip.MustParseAddrPort("127.0.0.1:51000") // the client's own end
	proxy  = netip.MustParseAddrPort("127.0.0.1:8088")  // the proxy's end
)

func TestFindPCBv4(t *testing.T) {
	b := table(
		testConn{vflag: inpIPv4, local: "127.0.0.1:8088", foreign: "127.0.0.1:51000", uid: 0, pid: 1}, // the proxy's accepted socket
		testConn{vflag: inpIPv4, local: "127.0.0.1:51001", foreign: "127.0.0.1:8088", uid: 501, pid: 99},
		testConn{vflag: inpIPv4, local: "127.0.0.1:51000", foreign: "127.0.0.1:8088", uid: 501, pid: 4242},
		testConn{vflag: inpIPv6, local: "[::1]:51000", foreign: "[::1]:8088", uid: 501, pid: 77},
	)
	c, err := findPCB(b, client, proxy)
	if err != nil {
		t.Fatal(err)
	}
	if c.pid != 4242 || c.uid != 501 || c.local != client || c.foreign != proxy {
		t.Fatalf("got %+v", c)
	}
}

func TestFindPCBv6(t *testing.T) {
	own := netip.MustParseAddrPort("[::1]:51000")
	peer := netip.MustParseAddrPort("[::1]:8088")
	b := table(
		testConn{vflag: inpIPv4, local: "127.0.0.1:51000", foreign: "127.0.0.1:8088", uid: 501, pid: 1},
		testConn{vflag: inpIPv6, local: "[::1]:51000", foreign: "[::1]:8088", uid: 502, pid: 31337},
	)
	c, err := findPCB(b, own, peer)
	if err != nil {
		t.Fatal(err)
	}
	if c.pid != 31337 || c.uid != 502 {
		t.Fatalf("got %+v", c)
	}
}

func TestFindPCBv4Mapped(t *testing.T) {
	// A dual-stack socket may carry a v4-mapped address with INP_IPV6; the
	// Resolver asks in the unmapped form.
	b := table(testConn{vflag: inpIPv6, local: "[::ffff:127.0.0.1]:51000", foreign: "[::ffff:127.0.0.1]:8088", uid: 501, pid: 55})
	c, err := findPCB(b, client, proxy)
	if err != nil || c.pid != 55 {
		t.Fatalf("got %+v, %v", c, err)
	}
}

func TestFindPCBNoMatch(t *testing.T) {
	b := table(
		testConn{vflag: inpIPv4, local: "127.0.0.1:8088", foreign: "127.0.0.1:51000", pid: 1}, // reversed ends
		testConn{vflag: inpIPv4, local: "127.0.0.1:51000", foreign: "127.0.0.1:8089", pid: 2}, // other peer port
		testConn{vflag: inpIPv4, local: "127.0.0.2:51000", foreign: "127.0.0.1:8088", pid: 3}, // other address
	)
	if _, err := findPCB(b, client, proxy); !errors.Is(err, errNoSocket) {
		t.Fatalf("err = %v, want errNoSocket", err)
	}
	if _, err := findPCB(table(), client, proxy); !errors.Is(err, errNoSocket) {
		t.Fatalf("empty table: err = %v, want errNoSocket", err)
	}
}

func TestFindPCBAmbiguous(t *testing.T) {
	b := table(
		testConn{vflag: inpIPv4, local: "127.0.0.1:51000", foreign: "127.0.0.1:8088", uid: 501, pid: 10},
		testConn{vflag: inpIPv4, local: "127.0.0.1:51000", foreign: "127.0.0.1:8088", uid: 502, pid: 20},
	)
	if c, err := findPCB(b, client, proxy); !errors.Is(err, errAmbiguous) {
		t.Fatalf("got %+v, %v; want errAmbiguous", c, err)
	}
}

func TestFindPCBMalformed(t *testing.T) {
	good := table(
		testConn{vflag: inpIPv4, local: "127.0.0.1:51000", foreign: "127.0.0.1:8088", uid: 501, pid: 10},
		testConn{vflag: inpIPv4, local: "127.0.0.1:51001", foreign: "127.0.0.1:8088", uid: 501, pid: 11},
	)
	// Every cut short of the closing xinpgen is rejected, never a partial
	// answer (the cut could hide a second match).
	for n := range len(good) - 1 {
		if _, err := findPCB(good[:n], client, proxy); !errors.Is(err, errPCBMalformed) {
			t.Fatalf("cut at %d: err = %v, want errPCBMalformed", n, err)
		}
	}
	bad := func(name string, mutate func(b []byte)) {
		b := append([]byte(nil), good...)
		mutate(b)
		if _, err := findPCB(b, client, proxy); !errors.Is(err, errPCBMalformed) {
			t.Errorf("%s: err = %v, want errPCBMalformed", name, err)
		}
	}
	bad("header length", func(b []byte) { binary.LittleEndian.PutUint32(b, 16) })
	bad("record longer than the table", func(b []byte) { binary.LittleEndian.PutUint32(b[24:], 1<<30) })
	bad("short xinpcb_n", func(b []byte) { binary.LittleEndian.PutUint32(b[24:], 40) })
	bad("no address family", func(b []byte) { b[24+inpVflag] = 0 })
	bad("closing xinpgen too short", func(b []byte) { binary.LittleEndian.PutUint32(b[len(b)-24:], 8) })
	bad("socket before inpcb", func(b []byte) { binary.LittleEndian.PutUint32(b[28:], xsoSocket) })
}

func TestParseProcArgs2(t *testing.T) {
	b := []byte{2, 0, 0, 0}
	b = append(b, "/usr/bin/curl\x00\x00\x00curl\x00-s\x00HOME=/x\x00"...)
	if got, err := parseProcArgs2(b); err != nil || got != "/usr/bin/curl" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, in := range [][]byte{nil, {1, 0}, {1, 0, 0, 0}, {1, 0, 0, 0, 0, 'x'}, {1, 0, 0, 0, '/', 'a'}} {
		if _, err := parseProcArgs2(in); !errors.Is(err, errProcArgs) {
			t.Errorf("%q: err = %v, want errProcArgs", in, err)
		}
	}
}

func TestCommName(t *testing.T) {
	comm := func(s string) []byte { b := make([]byte, 17); copy(b, s); return b }
	cases := []struct{ comm, exe, want string }{
		{"curl", "/usr/bin/curl", "curl"},
		{"git-remote-http", "/usr/libexec/git-core/git-remote-https", "git-remote-http"}, // 15 bytes: not cut
		{"Google Chrome He", "/Applications/x/Google Chrome Helper", "Google Chrome Helper"},
		{"Google Chrome He", "", "Google Chrome He"},
		{"Google Chrome He", "/bin/other", "Google Chrome He"},
		{"", "/usr/bin/python3", "python3"},
	}
	for _, c := range cases {
		if got := commName(comm(c.comm), c.exe); got != c.want {
			t.Errorf("commName(%q, %q) = %q, want %q", c.comm, c.exe, got, c.want)
		}
	}
}

// FuzzPCBList: no input makes the parser panic or loop, and what it finds
// is exactly what was asked for.
func FuzzPCBList(f *testing.F) {
	f.Add(table(testConn{vflag: inpIPv4, local: "127.0.0.1:51000", foreign: "127.0.0.1:8088", uid: 501, pid: 10}))
	f.Add(table(testConn{vflag: inpIPv6, local: "[::1]:51000", foreign: "[::1]:8088", pid: 3}))
	f.Add(table())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := findPCB(b, client, proxy)
		if err == nil && (c.local != client || c.foreign != proxy) {
			t.Fatalf("found %+v for %v -> %v", c, client, proxy)
		}
		_, _ = parseProcArgs2(b)
	})
}
