package procinfo

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// answer builds the kernel's inet_diag_msg reply for the socket src->dst,
// as a netlink message with the given sequence number and port id.
func answer(fam uint8, src, dst netip.AddrPort, seq, port, uid, inode uint32) []byte {
	b := make([]byte, nlmsgHdrLen+diagMsgLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[12:], port)
	m := b[nlmsgHdrLen:]
	m[0], m[1] = fam, 1 // ESTABLISHED
	putSockID(m[4:52], fam, src, dst)
	ne.PutUint32(m[64:], uid)
	ne.PutUint32(m[68:], inode)
	return b
}

func errMsg(seq, port uint32, errno int32) []byte {
	b := make([]byte, nlmsgHdrLen+20)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], nlmsgError)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[12:], port)
	ne.PutUint32(b[16:], uint32(-errno))
	return b
}

func TestDiagRequestLayout(t *testing.T) {
	q := diagQuery{src: netip.MustParseAddrPort("127.0.0.1:40000"), dst: netip.MustParseAddrPort("127.0.0.1:8088"), seq: 7}
	b := q.request()
	ne := binary.NativeEndian
	if len(b) != 72 || ne.Uint32(b) != 72 || ne.Uint16(b[4:]) != sockDiagByFamily || ne.Uint16(b[6:]) != nlmFRequest || ne.Uint32(b[8:]) != 7 {
		t.Fatalf("header % x", b[:16])
	}
	r := b[16:]
	if r[0] != afInet || r[1] != ipprotoTCP {
		t.Fatalf("family/protocol %d/%d", r[0], r[1])
	}
	if binary.BigEndian.Uint16(r[8:]) != 40000 || binary.BigEndian.Uint16(r[10:]) != 8088 {
		t.Fatalf("ports % x", r[8:12])
	}
	if [4]byte(r[12:16]) != [4]byte{127, 0, 0, 1} || [4]byte(r[28:32]) != [4]byte{127, 0, 0, 1} {
		t.Fatalf("addresses % x", r[12:44])
	}
	q6 := diagQuery{src: netip.MustParseAddrPort("[::1]:40000"), dst: netip.MustParseAddrPort("[::1]:8088")}
	if r6 := q6.request()[16:]; r6[0] != afInet6 || r6[12+15] != 1 || r6[28+15] != 1 {
		t.Fatalf("v6 request % x", r6)
	}
	// A v4-mapped pair asks the IPv4 table (which also holds dual-stack
	// sockets connected over IPv4).
	qm := diagQuery{src: netip.MustParseAddrPort("[::ffff:127.0.0.1]:1"), dst: netip.MustParseAddrPort("127.0.0.1:2")}
	if qm.family() != afInet {
		t.Fatal("v4-mapped query not sent as AF_INET")
	}
}

func TestDiagAnswerChecked(t *testing.T) {
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	dst := netip.MustParseAddrPort("127.0.0.1:8088")
	q := diagQuery{src: src, dst: dst, seq: 9}
	const port = 4242
	good := answer(afInet, src, dst, 9, port, 1000, 555)
	other := netip.MustParseAddrPort("127.0.0.1:40001")

	a, done, err := parseDiagAnswer(good, q, port)
	if err != nil || !done || a.inode != 555 || a.uid != 1000 {
		t.Fatalf("good answer: %+v done=%v err=%v", a, done, err)
	}
	// A dual-stack socket answers with family AF_INET6 and v4-mapped addresses.
	mapped := answer(afInet6, netip.MustParseAddrPort("[::ffff:127.0.0.1]:40000"), netip.MustParseAddrPort("[::ffff:127.0.0.1]:8088"), 9, port, 1000, 556)
	if a, _, err := parseDiagAnswer(mapped, q, port); err != nil || a.inode != 556 {
		t.Fatalf("v4-mapped answer: %+v %v", a, err)
	}
	// A stale answer (earlier sequence number) is skipped, not believed.
	stale := answer(afInet, other, dst, 8, port, 0, 999)
	if _, done, err := parseDiagAnswer(stale, q, port); done || err != nil {
		t.Fatalf("stale answer alone: done=%v err=%v, want skipped", done, err)
	}
	// Stale then good in one datagram: the good one counts.
	if a, done, err := parseDiagAnswer(append(stale, good...), q, port); err != nil || !done || a.inode != 555 {
		t.Fatalf("stale+good: %+v %v %v", a, done, err)
	}

	forged := map[string][]byte{
		"other source port":   answer(afInet, other, dst, 9, port, 0, 999),
		"other peer port":     answer(afInet, src, netip.MustParseAddrPort("127.0.0.1:8089"), 9, port, 0, 999),
		"other address":       answer(afInet, netip.MustParseAddrPort("127.0.0.2:40000"), dst, 9, port, 0, 999),
		"swapped ends":        answer(afInet, dst, src, 9, port, 0, 999),
		"other v6 address":    answer(afInet6, netip.MustParseAddrPort("[::1]:40000"), dst, 9, port, 0, 999),
		"not our port id":     answer(afInet, src, dst, 9, port+1, 0, 999),
		"truncated message":   good[:nlmsgHdrLen+40],
		"bad family":          func() []byte { b := append([]byte(nil), good...); b[nlmsgHdrLen] = 1; return b }(),
		"length past end":     func() []byte { b := append([]byte(nil), good...); binary.NativeEndian.PutUint32(b, 4096); return b }(),
		"length below header": func() []byte { b := append([]byte(nil), good...); binary.NativeEndian.PutUint32(b, 8); return b }(),
		"unknown type":        func() []byte { b := append([]byte(nil), good...); binary.NativeEndian.PutUint16(b[4:], 99); return b }(),
		"short datagram":      good[:10],
	}
	for name, b := range forged {
		a, _, err := parseDiagAnswer(b, q, port)
		if !errors.Is(err, errForged) {
			t.Errorf("%s: %+v err=%v, want errForged", name, a, err)
		}
	}
	// Two sockets answering one exact request: neither is believed.
	if _, _, err := parseDiagAnswer(append(append([]byte(nil), good...), good...), q, port); !errors.Is(err, errAmbiguous) {
		t.Errorf("two answers: %v", err)
	}
	if _, _, err := parseDiagAnswer(errMsg(9, port, 2), q, port); !errors.Is(err, errNoSocket) {
		t.Errorf("ENOENT: %v", err)
	}
	if _, _, err := parseDiagAnswer(errMsg(9, port, 13), q, port); err == nil || errors.Is(err, errNoSocket) {
		t.Errorf("EACCES: %v", err)
	}
}

func FuzzDiagAnswer(f *testing.F) {
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	dst := netip.MustParseAddrPort("127.0.0.1:8088")
	q := diagQuery{src: src, dst: dst, seq: 9}
	f.Add(answer(afInet, src, dst, 9, 1, 1000, 555))
	f.Add(errMsg(9, 1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, _, err := parseDiagAnswer(b, q, 1)
		if err == nil && a.inode != 0 {
			// Whatever was accepted names the socket asked for.
			for m := b; len(m) >= nlmsgHdrLen+diagMsgLen; {
				n := int(binary.NativeEndian.Uint32(m))
				if n < nlmsgHdrLen || n > len(m) {
					break
				}
				if binary.NativeEndian.Uint16(m[4:]) == sockDiagByFamily && binary.NativeEndian.Uint32(m[8:]) == 9 {
					if _, err := checkDiagMsg(m[nlmsgHdrLen:n], q); err != nil {
						t.Fatalf("accepted an answer that does not check: %v", err)
					}
				}
				m = m[min(nlmAlign(n), len(m)):]
			}
		}
	})
}
