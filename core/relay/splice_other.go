//go:build !linux

package relay

import "net"

// spliceHalf is Linux's zero-copy path; elsewhere copyHalf copies in user
// space.
func spliceHalf(dst, src net.Conn, count func(int64), sd *side, q *spliceState) (handled, eof bool, err error) {
	return false, false, nil
}

// spliceState is Linux's; elsewhere there is nothing to keep.
type spliceState struct{}
