package outbound

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// netlinkWatch is a NETLINK_ROUTE socket subscribed to IPv4 and IPv6
// address changes. It is never read by a goroutine of its own: changed
// drains it without blocking (one system call when nothing happened), so
// the cache needs no goroutine and nothing to stop. The socket lives as
// long as the process, like the cache.
type netlinkWatch struct {
	fd  int
	buf []byte
}

func openAddrWatch() (addrWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("address watch: %w", err)
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd) // never used
		return nil, fmt.Errorf("address watch: %w", err)
	}
	return &netlinkWatch{fd: fd, buf: make([]byte, 8192)}, nil
}

// maxDrain bounds the messages read by one changed call.
const maxDrain = 1024

// changed drains the socket; any message (an address added or removed)
// or an overflow (ENOBUFS: messages were lost) means a change. Another
// error also answers true, so a broken watch costs reads, never a stale
// list. (Only the kernel, or root, can send to these groups; a forged
// message only causes a read.)
func (w *netlinkWatch) changed() bool {
	seen := false
	for range maxDrain {
		_, err := unix.Read(w.fd, w.buf)
		switch {
		case err == nil, errors.Is(err, unix.ENOBUFS):
			seen = true
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EWOULDBLOCK):
			return seen
		case errors.Is(err, unix.EINTR):
		default:
			return true
		}
	}
	return true
}
