package procinfo

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// The tables are built here byte by byte as Windows lays them out, so the
// test does not share the parser's reading of the layout.

type testRow struct {
	local, remote netip.AddrPort
	pid, state    uint32
}

func putPort(b []byte, p uint16) { b[0], b[1] = byte(p>>8), byte(p) } // network order, low 16 bits

func table4(rows ...testRow) []byte {
	b := make([]byte, tcpTableHdrLen+len(rows)*tcpRow4Len)
	binary.LittleEndian.PutUint32(b, uint32(len(rows)))
	for i, r := range rows {
		row := b[tcpTableHdrLen+i*tcpRow4Len:]
		binary.LittleEndian.PutUint32(row[0:], r.state)
		l, rm := r.local.Addr().As4(), r.remote.Addr().As4()
		copy(row[4:8], l[:])
		putPort(row[8:], r.local.Port())
		copy(row[12:16], rm[:])
		putPort(row[16:], r.remote.Port())
		binary.LittleEndian.PutUint32(row[20:], r.pid)
	}
	return b
}

func table6(rows ...testRow) []byte {
	b := make([]byte, tcpTableHdrLen+len(rows)*tcpRow6Len)
	binary.LittleEndian.PutUint32(b, uint32(len(rows)))
	for i, r := range rows {
		row := b[tcpTableHdrLen+i*tcpRow6Len:]
		l, rm := r.local.Addr().As16(), r.remote.Addr().As16()
		copy(row[0:16], l[:])
		binary.LittleEndian.PutUint32(row[16:], 7) // scope id: ignored
		putPort(row[20:], r.local.Port())
		copy(row[24:40], rm[:])
		binary.LittleEndian.PutUint32(row[40:], 7)
		putPort(row[44:], r.remote.Port())
		binary.LittleEndian.PutUint32(row[48:], r.state)
		binary.LittleEndian.PutUint32(row[52:], r.pid)
	}
	return b
}

var (
	proxy4  = netip.MustParseAddrPort("127.0.0.1:8080")
	client4 = netip.MustParseAddrPort("127.0.0.1:50123")
	proxy6  = netip.MustParseAddrPort("[::1]:8080")
	client6 = netip.MustParseAddrPort("[::1]:50123")
)

const established = 5 // MIB_TCP_STATE_ESTAB

func TestTCPTableFindsIPv4Owner(t *testing.T) {
	tab := table4(
		testRow{proxy4, netip.MustParseAddrPort("0.0.0.0:0"), 100, 2}, // listener
		testRow{proxy4, client4, 100, established},                    // the proxy's end
		testRow{client4, netip.MustParseAddrPort("127.0.0.1:8081"), 300, established},
		testRow{client4, proxy4, 4242, established}, // the client's end
		testRow{netip.MustParseAddrPort("10.0.0.2:50123"), proxy4, 500, established},
	)
	m, err := findTCPOwner(tab, false, client4, proxy4)
	if err != nil || m.rows != 1 || m.ambiguous || m.pid != 4242 {
		t.Fatalf("got %+v, %v; want pid 4242 from one row", m, err)
	}
	// The proxy's own end is found the other way round: the two are not confused.
	if m, _ := findTCPOwner(tab, false, proxy4, client4); m.pid != 100 {
		t.Fatalf("proxy end: got %+v, want pid 100", m)
	}
}

func TestTCPTableFindsIPv6Owner(t *testing.T) {
	zoned := netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 50124)
	peer := netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 8080)
	tab := table6(
		testRow{proxy6, client6, 100, established},
		testRow{client6, proxy6, 777, established},
		testRow{netip.MustParseAddrPort("[fe80::1]:50124"), netip.MustParseAddrPort("[fe80::1]:8080"), 778, established},
		// A dual-stack socket connected over IPv4 shows v4-mapped addresses.
		testRow{netip.MustParseAddrPort("[::ffff:127.0.0.1]:50200"), netip.MustParseAddrPort("[::ffff:127.0.0.1]:8080"), 779, established},
	)
	for _, c := range []struct {
		self, peer netip.AddrPort
		pid        uint32
	}{
		{client6, proxy6, 777},
		{zoned, peer, 778}, // the zone is not in the table
		{netip.MustParseAddrPort("127.0.0.1:50200"), proxy4, 779},
	} {
		m, err := findTCPOwner(tab, true, c.self, c.peer)
		if err != nil || m.rows != 1 || m.ambiguous || m.pid != c.pid {
			t.Errorf("%v->%v: got %+v, %v; want pid %d", c.self, c.peer, m, err, c.pid)
		}
	}
}

func TestTCPTableNoMatch(t *testing.T) {
	tab := table4(
		testRow{client4, netip.AddrPortFrom(proxy4.Addr(), 8081), 1, established},  // other peer port
		testRow{netip.AddrPortFrom(client4.Addr(), 50124), proxy4, 2, established}, // other own port
		testRow{netip.MustParseAddrPort("127.0.0.2:50123"), proxy4, 3, established},
	)
	for _, c := range []struct {
		name string
		tab  []byte
		v6   bool
	}{{"v4", tab, false}, {"empty v4", table4(), false}, {"empty v6", table6(), true}} {
		m, err := findTCPOwner(c.tab, c.v6, client4, proxy4)
		if err != nil || m.rows != 0 || m.pid != 0 || m.ambiguous {
			t.Errorf("%s: got %+v, %v; want no match", c.name, m, err)
		}
	}
	// An IPv6 tuple is not found in an IPv4 table's bytes read as IPv4.
	if m, err := findTCPOwner(table4(testRow{client4, proxy4, 9, established}), false, client6, proxy6); err != nil || m.rows != 0 {
		t.Errorf("v6 tuple in v4 table: got %+v, %v", m, err)
	}
}

func TestTCPTableAmbiguous(t *testing.T) {
	same := table4(testRow{client4, proxy4, 10, established}, testRow{client4, proxy4, 10, established})
	if m, err := findTCPOwner(same, false, client4, proxy4); err != nil || m.ambiguous || m.pid != 10 || m.rows != 2 {
		t.Errorf("same owner twice: got %+v, %v; want pid 10", m, err)
	}
	for name, c := range map[string]struct {
		tab        []byte
		v6         bool
		self, peer netip.AddrPort
	}{
		"two pids":          {table4(testRow{client4, proxy4, 10, established}, testRow{client4, proxy4, 11, established}), false, client4, proxy4},
		"pid and time-wait": {table4(testRow{client4, proxy4, 0, 11}, testRow{client4, proxy4, 10, established}), false, client4, proxy4},
		"v6 two pids":       {table6(testRow{client6, proxy6, 10, established}, testRow{client6, proxy6, 12, established}, testRow{client6, proxy6, 10, established}), true, client6, proxy6},
	} {
		m, err := findTCPOwner(c.tab, c.v6, c.self, c.peer)
		if err != nil || !m.ambiguous || m.pid != 0 {
			t.Errorf("%s: got %+v, %v; want ambiguous with no pid", name, m, err)
		}
	}
}

func TestTCPTableMalformed(t *testing.T) {
	good4 := table4(testRow{client4, proxy4, 1, established}, testRow{proxy4, client4, 2, established})
	good6 := table6(testRow{client6, proxy6, 1, established})
	huge := []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}
	for name, c := range map[string]struct {
		tab []byte
		v6  bool
	}{
		"nil":              {nil, false},
		"short header":     {[]byte{1, 0}, false},
		"v4 cut in a row":  {good4[:len(good4)-1], false},
		"v6 cut in a row":  {good6[:len(good6)-10], true},
		"v4 count too big": {huge, false},
		"v6 count too big": {huge, true},
		"v4 read as v6":    {good4, true}, // 2 rows of 24 bytes are not 2 of 56
	} {
		if _, err := findTCPOwner(c.tab, c.v6, client4, proxy4); !errors.Is(err, errTableMalformed) {
			t.Errorf("%s: got %v, want errTableMalformed", name, err)
		}
	}
	// Bytes after the counted rows (the buffer's unused rest) are ignored.
	padded := append(append([]byte{}, good4...), make([]byte, 100)...)
	if m, err := findTCPOwner(padded, false, client4, proxy4); err != nil || m.pid != 1 {
		t.Errorf("padded: got %+v, %v; want pid 1", m, err)
	}
}

// FuzzTCPTable: any bytes are read without a panic, and a match is one the
// bytes really hold.
func FuzzTCPTable(f *testing.F) {
	f.Add(table4(testRow{client4, proxy4, 1, established}), false)
	f.Add(table6(testRow{client6, proxy6, 1, established}), true)
	f.Add(table4(testRow{client4, proxy4, 1, established}, testRow{client4, proxy4, 2, established}), false)
	f.Add([]byte{3, 0, 0, 0, 1}, true)
	f.Fuzz(func(t *testing.T, tab []byte, v6 bool) {
		for _, q := range [][2]netip.AddrPort{{client4, proxy4}, {client6, proxy6}} {
			m, err := findTCPOwner(tab, v6, q[0], q[1])
			if err != nil {
				if m != (tcpMatch{}) {
					t.Fatalf("error %v with a match %+v", err, m)
				}
				continue
			}
			if m.ambiguous && m.pid != 0 || m.rows == 0 && (m.pid != 0 || m.ambiguous) {
				t.Fatalf("inconsistent match %+v", m)
			}
			if m.rows == 0 || m.ambiguous {
				continue
			}
			// Rebuild the row the match claims and find it in the bytes.
			build := table4
			if v6 {
				build = table6
			}
			want := build(testRow{q[0], q[1], m.pid, 0})[tcpTableHdrLen:]
			if !rowIn(tab[tcpTableHdrLen:], want, v6) {
				t.Fatalf("match %+v is not in the table", m)
			}
		}
	})
}

// rowIn reports whether a row with want's addresses, ports and pid is in
// rows (state and scope ids aside; v4-mapped IPv6 rows equal IPv4 ones).
func rowIn(rows, want []byte, v6 bool) bool {
	rowLen := tcpRow4Len
	if v6 {
		rowLen = tcpRow6Len
	}
	wl, wr, wp := parseRowAny(want, v6)
	for i := 0; i+rowLen <= len(rows); i += rowLen {
		l, r, p := parseRowAny(rows[i:i+rowLen], v6)
		if l == wl && r == wr && p == wp {
			return true
		}
	}
	return false
}

func parseRowAny(row []byte, v6 bool) (netip.AddrPort, netip.AddrPort, uint32) {
	if v6 {
		return parseRow6(row)
	}
	return parseRow4(row)
}
