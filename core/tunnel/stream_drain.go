package tunnel

import (
	"io"
	"net"
	"os"
)

// drainMax bounds what one WriteUnreadTo takes out of a stream: what a
// relay's copy buffer holds, so that flow control sees the same pace.
const drainMax = 128 << 10

// WriteUnreadTo writes bytes the stream has received and nobody has read
// to w, straight from the buffers they arrived in (one writev on a
// socket), where a Read would copy them into the caller's buffer first: a
// relay moving a download saves a copy of every byte. It takes at most
// drainMax bytes and does not wait. With nothing unread it returns the
// stream's end (io.EOF), failure, close or read deadline as rerr, as Read
// would, or nothing while the stream is open: wait with WaitRead.
//
// The bytes taken count as read, for flow control and the session's
// budget, as soon as they are taken; n is what w accepted, and a failed
// write is werr (the rest of what was taken is lost with the connection,
// as a Read's buffer would be).
//
// Concurrency: as Read, which it must not run beside.
func (st *Stream) WriteUnreadTo(w io.Writer) (n int64, werr, rerr error) {
	st.mu.Lock()
	if isClosed(st.rd.wait()) && !st.closed {
		st.mu.Unlock()
		wake(st.readWake)
		return 0, nil, os.ErrDeadlineExceeded
	}
	if st.in.len() == 0 {
		rerr = st.endLocked()
		st.mu.Unlock()
		if rerr != nil {
			wake(st.readWake)
		}
		return 0, nil, rerr
	}
	taken, m := st.in.take(drainMax)
	more := st.in.len() > 0
	st.unchargeLocked(int64(m))
	st.consumedLocked(int64(m))
	st.mu.Unlock()
	if more {
		wake(st.readWake) // a WaitRead beside may take the rest
	}
	bufs := make(net.Buffers, len(taken))
	for i, c := range taken {
		bufs[i] = c.data
	}
	n, werr = bufs.WriteTo(w)
	for _, c := range taken {
		framePool.Put(c.buf)
	}
	return n, werr, nil
}
