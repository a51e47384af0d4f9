package tunnel

import (
	"crypto/tls"
	"net"
	"syscall"
)

// tcpNotSentLowat is TCP_NOTSENT_LOWAT (linux/tcp.h); syscall lacks it.
const tcpNotSentLowat = 25

// notSentLowat is how many bytes may wait unsent in the kernel before a
// write blocks. Without it, megabytes of DATA queue in the socket on a fast
// link, and a control frame (OPEN_OK, WINDOW, PONG) or another stream's
// chunk written after them waits for all of it: head-of-line blocking below
// the session's own scheduling. Keeping the queue short keeps the choice of
// what goes next in the writer.
const notSentLowat = 128 << 10

// limitUnsent sets TCP_NOTSENT_LOWAT on the session's socket, if it is TCP
// (possibly under TLS); failure only costs latency, so it is not an error.
func limitUnsent(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, notSentLowat)
	})
}
