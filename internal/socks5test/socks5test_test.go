package socks5test

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// replyCase is a reply as it comes from the proxy and what ReadReply makes
// of it.
type replyCase struct {
	name string
	in   []byte
	head [4]byte
	err  error
	left int // bytes of in not read
}

func TestReadReply(t *testing.T) {
	for _, c := range []replyCase{
		{"ipv4", []byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 80, 'x'}, [4]byte{5, 0, 0, 1}, nil, 1},
		{"ipv6", append([]byte{5, 4, 0, 4}, make([]byte, 18)...), [4]byte{5, 4, 0, 4}, nil, 0},
		{"name", []byte{5, 0, 0, 3, 1, 'a', 0, 80}, [4]byte{5, 0, 0, 3}, ErrAddressType, 4},
		{"short head", []byte{5, 0}, [4]byte{5, 0, 0, 0}, io.ErrUnexpectedEOF, 0},
		{"short address", []byte{5, 0, 0, 1, 127}, [4]byte{5, 0, 0, 1}, io.ErrUnexpectedEOF, 0},
	} {
		r := bytes.NewReader(c.in)
		head, err := ReadReply(r)
		if head != c.head || !errors.Is(err, c.err) || r.Len() != c.left {
			t.Errorf("%s: head % x, err %v, %d bytes left; want % x, %v, %d", c.name, head, err, r.Len(), c.head, c.err, c.left)
		}
	}
}
