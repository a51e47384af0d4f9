package tunnel

import "sync"

// frameBufSize is the size of the session reader's message buffers: one
// more than the largest message, so that a message that fills it is known
// to be too large (the WebSocket's read limit refuses it first).
const frameBufSize = MaxFrameSize + 1

// framePool holds message buffers. The reader reads each message into one;
// a DATA payload of at least handOver bytes stays in it and the buffer goes
// to the stream (no copy), which puts it back once the bytes are read.
var framePool = sync.Pool{New: func() any { b := make([]byte, frameBufSize); return &b }}

// handOver is the smallest payload whose message buffer is handed to the
// stream instead of being copied: at least half a buffer, so that a stream
// never holds more than about twice its unread bytes in buffers, whatever
// sizes the peer sends.
const handOver = MaxData / 2

// recvChunk is unread stream data in a pooled buffer: data is the unread
// part of *buf.
type recvChunk struct {
	buf  *[]byte
	data []byte
}

// recvBuf is a stream's received, unread bytes: a queue of pooled chunks.
// Bulk DATA arrives without a copy; small payloads are packed into the
// last chunk. A drained chunk goes back to the pool at once, so an idle
// stream holds no buffer at all. The stream's mu guards it.
type recvBuf struct {
	chunks []recvChunk
	n      int // unread bytes in all chunks
}

func (r *recvBuf) len() int { return r.n }

// deliver adds p, read into the pooled message buffer fb, and says whether
// it kept fb (the caller must then not touch it again).
func (r *recvBuf) deliver(p []byte, fb *[]byte) (kept bool) {
	r.n += len(p)
	if k := len(r.chunks); k > 0 {
		last := &r.chunks[k-1]
		if cap(last.data)-len(last.data) >= len(p) {
			last.data = append(last.data, p...)
			return false
		}
	}
	if len(p) >= handOver && fb != nil {
		r.chunks = append(r.chunks, recvChunk{buf: fb, data: p})
		return true
	}
	nb := framePool.Get().(*[]byte)
	r.chunks = append(r.chunks, recvChunk{buf: nb, data: append((*nb)[:0], p...)})
	return false
}

// read copies unread bytes into p and returns how many.
func (r *recvBuf) read(p []byte) int {
	n := 0
	for n < len(p) && len(r.chunks) > 0 {
		c := &r.chunks[0]
		m := copy(p[n:], c.data)
		n += m
		c.data = c.data[m:]
		if len(c.data) == 0 {
			r.pop()
		}
	}
	r.n -= n
	return n
}

// take removes whole chunks from the front, at least one and no more than
// max bytes after the first, and returns them with their byte count; the
// caller owns their buffers (and puts them back in framePool).
func (r *recvBuf) take(max int) ([]recvChunk, int) {
	k, n := 0, 0
	for k < len(r.chunks) && (k == 0 || n+len(r.chunks[k].data) <= max) {
		n += len(r.chunks[k].data)
		k++
	}
	taken := make([]recvChunk, k)
	copy(taken, r.chunks[:k])
	clear(r.chunks[:k])
	r.chunks = r.chunks[k:]
	if len(r.chunks) == 0 {
		r.chunks = nil // let the array go too: an idle stream holds nothing
	}
	r.n -= n
	return taken, n
}

// pop returns the first chunk's buffer to the pool.
func (r *recvBuf) pop() {
	framePool.Put(r.chunks[0].buf)
	r.chunks[0] = recvChunk{}
	r.chunks = r.chunks[1:]
	if len(r.chunks) == 0 {
		r.chunks = nil // let the array go too: an idle stream holds nothing
	}
}

// reset drops every unread byte and gives the buffers back.
func (r *recvBuf) reset() {
	for len(r.chunks) > 0 {
		r.pop()
	}
	r.n = 0
}
