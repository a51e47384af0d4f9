package procinfo

// Windows' owner-pid TCP tables (iphlpapi GetExtendedTcpTable with
// TCP_TABLE_OWNER_PID_ALL), read here without system calls so that the
// reading is unit-tested on any OS (procinfo_windows.go does the call).
// Layouts (tcpmib.h): a DWORD count, then the rows.
//
//	MIB_TCPROW_OWNER_PID (24 bytes): dwState, dwLocalAddr, dwLocalPort,
//	  dwRemoteAddr, dwRemotePort, dwOwningPid
//	MIB_TCP6ROW_OWNER_PID (56 bytes): ucLocalAddr[16], dwLocalScopeId,
//	  dwLocalPort, ucRemoteAddr[16], dwRemoteScopeId, dwRemotePort,
//	  dwState, dwOwningPid
//
// Addresses are in network order as they lie in memory; a port is in
// network order in the low 16 bits of its DWORD, i.e. its first two bytes
// in memory; every other DWORD is in the host's order, little-endian on
// every Windows architecture.

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

const (
	tcpTableHdrLen = 4
	tcpRow4Len     = 24
	tcpRow6Len     = 56
)

// errTableMalformed: the table is shorter than its count of rows says.
var errTableMalformed = errors.New("tcp table: truncated or malformed")

// tcpMatch is what a table says about one socket.
type tcpMatch struct {
	rows      int    // rows with the socket's exact addresses and ports
	pid       uint32 // their owner, when rows > 0 and !ambiguous
	ambiguous bool   // the rows name different owners
}

// findTCPOwner searches a table (v6: the AF_INET6 layout) for the socket
// whose own end is self and whose peer is peer, comparing addresses
// without zones and v4-mapped addresses as IPv4 (a dual-stack socket
// connected over IPv4 shows its addresses v4-mapped). Only an exact match
// of all four counts; a row owned by pid 0 (a socket in TIME_WAIT has no
// owner) is a different owner like any other, so that it never yields to
// a guess.
func findTCPOwner(table []byte, v6 bool, self, peer netip.AddrPort) (tcpMatch, error) {
	var m tcpMatch
	if len(table) < tcpTableHdrLen {
		return m, errTableMalformed
	}
	n := uint64(binary.LittleEndian.Uint32(table))
	rowLen := uint64(tcpRow4Len)
	if v6 {
		rowLen = tcpRow6Len
	}
	rows := table[tcpTableHdrLen:]
	// n <= 2^32 and rowLen < 64: the product does not overflow 64 bits.
	if n*rowLen > uint64(len(rows)) {
		return m, errTableMalformed
	}
	self = unzoned(self)
	peer = unzoned(peer)
	for i := range int(n) {
		row := rows[uint64(i)*rowLen:][:rowLen]
		var l, r netip.AddrPort
		var pid uint32
		if v6 {
			l, r, pid = parseRow6(row)
		} else {
			l, r, pid = parseRow4(row)
		}
		if l != self || r != peer {
			continue
		}
		if m.rows > 0 && pid != m.pid {
			m.ambiguous = true
		}
		m.rows++
		m.pid = pid
	}
	if m.ambiguous {
		m.pid = 0
	}
	return m, nil
}

func parseRow4(row []byte) (local, remote netip.AddrPort, pid uint32) {
	local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(row[4:8])), binary.BigEndian.Uint16(row[8:10]))
	remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(row[12:16])), binary.BigEndian.Uint16(row[16:18]))
	return local, remote, binary.LittleEndian.Uint32(row[20:24])
}

func parseRow6(row []byte) (local, remote netip.AddrPort, pid uint32) {
	local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(row[0:16])).Unmap(), binary.BigEndian.Uint16(row[20:22]))
	remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(row[24:40])).Unmap(), binary.BigEndian.Uint16(row[44:46]))
	return local, remote, binary.LittleEndian.Uint32(row[52:56])
}

// unzoned is a without its zone and with a v4-mapped address as IPv4, the
// form the rows are compared in.
func unzoned(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().WithZone("").Unmap(), a.Port())
}
