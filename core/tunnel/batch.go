package tunnel

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// batchSize is how many bytes of messages the session's writer gathers
// before it writes them out; it writes sooner when nothing else is queued.
// One write system call per message (32 KiB) made every write wake the
// peer's reader and cost a round of scheduling on both ends; several
// messages per write cut those costs for bulk transfers, and a lone frame
// (an echo, a WINDOW) still goes out at once, since the writer flushes as
// soon as its queues are empty.
const batchSize = 128 << 10

// wsHeaderMax is the longest WebSocket frame header: 2 bytes, a 64-bit
// length and a mask key.
const wsHeaderMax = 2 + 8 + 4

// batch gathers complete WebSocket binary messages (RFC 6455 §5.2, one
// frame each, masked on the client as the RFC requires) and writes them to
// the connection together.
//
// The session's writer goroutine owns it. It writes to the socket
// underneath the gorilla *websocket.Conn, which keeps the handshake, the
// reading and its own control frames (the close frame): each Write of a
// net.Conn is atomic with respect to other Writes (TCP and TLS conns hold
// their write lock for the whole call), and a batch holds whole frames
// only, so a close frame gorilla writes at the same time lands between
// frames, never inside one.
//
// Its buffer is borrowed from a pool while frames are gathered and given
// back at every write, so an idle session (an exit may serve a thousand)
// holds none.
type batch struct {
	conn   net.Conn
	client bool // mask every frame
	buf    []byte
	pooled *[]byte // where buf came from; nil while nothing is gathered
}

// batchCap holds a full batch and one more message of the largest size.
const batchCap = batchSize + wsHeaderMax + MaxFrameSize

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, batchCap); return &b }}

func newBatch(conn net.Conn, client bool) *batch {
	return &batch{conn: conn, client: client}
}

// full says the batch should be written before more is added.
func (b *batch) full() bool { return len(b.buf) >= batchSize }

func (b *batch) empty() bool { return len(b.buf) == 0 }

// begin appends the header of a binary message of n bytes and returns where
// its payload starts, for finish.
func (b *batch) begin(n int) int {
	if b.pooled == nil {
		b.pooled = batchPool.Get().(*[]byte)
		b.buf = (*b.pooled)[:0]
	}
	b.buf = append(b.buf, 0x80|0x2) // FIN, binary
	var maskBit byte
	if b.client {
		maskBit = 0x80
	}
	switch {
	case n <= 125:
		b.buf = append(b.buf, maskBit|byte(n))
	case n <= 0xFFFF:
		b.buf = append(b.buf, maskBit|126)
		b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(n))
	default:
		b.buf = append(b.buf, maskBit|127)
		b.buf = binary.BigEndian.AppendUint64(b.buf, uint64(n))
	}
	if b.client {
		b.buf = binary.LittleEndian.AppendUint32(b.buf, rand.Uint32())
	}
	return len(b.buf)
}

// finish masks the payload that began at start (client side).
func (b *batch) finish(start int) {
	if b.client {
		mask(b.buf[start-4:start], b.buf[start:])
	}
}

// add appends one message holding frame.
func (b *batch) add(frame []byte) {
	start := b.begin(len(frame))
	b.buf = append(b.buf, frame...)
	b.finish(start)
}

// flush writes the batch out within timeout.
func (b *batch) flush(timeout time.Duration) error {
	if len(b.buf) == 0 {
		return nil
	}
	if err := b.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := b.conn.Write(b.buf)
	*b.pooled = b.buf[:0]
	batchPool.Put(b.pooled)
	b.buf, b.pooled = nil, nil
	return err
}

// mask XORs p with the 4-byte key, as RFC 6455 §5.3 says, 32 bytes at a
// time: on the client every byte sent goes through it. Steps of 8 keep the
// key's phase, so the tail starts again at key[0].
func mask(key, p []byte) {
	k32 := binary.LittleEndian.Uint32(key)
	k := uint64(k32) | uint64(k32)<<32
	for len(p) >= 32 {
		q := p[:32:32]
		binary.LittleEndian.PutUint64(q[0:], binary.LittleEndian.Uint64(q[0:])^k)
		binary.LittleEndian.PutUint64(q[8:], binary.LittleEndian.Uint64(q[8:])^k)
		binary.LittleEndian.PutUint64(q[16:], binary.LittleEndian.Uint64(q[16:])^k)
		binary.LittleEndian.PutUint64(q[24:], binary.LittleEndian.Uint64(q[24:])^k)
		p = p[32:]
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k)
		p = p[8:]
	}
	for i := range p {
		p[i] ^= key[i&3]
	}
}
