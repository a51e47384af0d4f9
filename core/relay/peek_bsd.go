//go:build darwin || freebsd || netbsd || openbsd

package relay

import "syscall"

// peekByte is recv(2) of one byte into b with MSG_PEEK|MSG_DONTWAIT: what
// is queued stays queued. (Linux has one that allocates nothing.)
func peekByte(fd int, b *[1]byte) (int, error) {
	n, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n, err
}
