package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"time"

	"github.com/gorilla/websocket"
)

// The session's reader: it decodes each message into a frame and applies
// it to the session or to one of its streams.

func (s *Session) readLoop() {
	defer s.wg.Done()
	fb := framePool.Get().(*[]byte)
	defer func() { framePool.Put(fb) }()
	for {
		kind, r, err := s.ws.NextReader()
		if err != nil {
			s.shutdown(err)
			return
		}
		n, err := readMessage(r, *fb)
		if err != nil {
			s.shutdown(err)
			return
		}
		s.lastRecv.Store(int64(time.Since(s.start)))
		if kind != websocket.BinaryMessage {
			s.shutdown(fmt.Errorf("%w: text message", ErrProtocol))
			return
		}
		f, err := Parse((*fb)[:n])
		if err != nil {
			s.shutdown(fmt.Errorf("%w: %w", ErrProtocol, err))
			return
		}
		if s.handle(f, fb) {
			fb = framePool.Get().(*[]byte) // the stream has the last one
		}
		// The stream this message readied (its Read or WriteUnreadTo)
		// runs now, beside the reader (see Yields at writeLoop).
		runtime.Gosched()
	}
}

// readMessage reads one whole message into buf, which is one byte larger
// than any message the WebSocket's read limit lets through.
func readMessage(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		m, err := r.Read(buf[n:])
		n += m
		switch {
		case errors.Is(err, io.EOF):
			return n, nil
		case err != nil:
			return n, err
		case n == len(buf):
			return n, fmt.Errorf("%w: message over %d bytes", ErrProtocol, MaxFrameSize)
		}
	}
}

// handle applies one frame, read into the pooled buffer fb, and says
// whether a stream kept fb for the DATA in it. Frames for unknown streams
// are dropped: they may have crossed an RST.
func (s *Session) handle(f Frame, fb *[]byte) (kept bool) {
	switch f.Type {
	case TypePing:
		s.answer(Frame{Type: TypePong, Time: f.Time})
		return
	case TypePong:
		// The time is ours, echoed: a value from before the session or
		// from the future is a peer making things up, and is ignored.
		if now := uint64(time.Since(s.start)); f.Time > 0 && f.Time <= now {
			s.rtt.Store(int64(now - f.Time))
			s.ponged(f.Time, time.Duration(now-f.Time))
		}
		return
	case TypeOpen:
		s.handleOpen(f)
		return
	}
	s.mu.Lock()
	st := s.streams[f.Stream]
	s.mu.Unlock()
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err != nil {
		return
	}
	if s.client && !st.openDone && (f.Type == TypeData || f.Type == TypeFin) {
		// The exit answers an OPEN before it sends anything of the
		// stream: a client answered early waits for that answer before
		// it finishes the connection's record.
		st.resetLocked(CodeProtocol, f.Type.String()+" before OPEN_OK", fmt.Errorf("%w: %s before OPEN_OK", ErrProtocol, f.Type), resetAnswer)
		return
	}
	switch f.Type {
	case TypeOpenOK:
		if !s.client || st.openDone {
			st.resetLocked(CodeProtocol, "unexpected OPEN_OK", fmt.Errorf("%w: OPEN_OK", ErrProtocol), resetAnswer)
			return
		}
		if f.Window < DefaultWindow {
			st.resetLocked(CodeProtocol, "OPEN_OK window below the default", fmt.Errorf("%w: OPEN_OK window %d", ErrProtocol, f.Window), resetAnswer)
			return
		}
		st.remote = f.Target
		st.openedLocked()
		st.stopOpenTimerLocked()
		st.credit += int64(f.Window) - DefaultWindow
		st.enqueueLocked()
		wake(st.writeWake)
	case TypeOpenFail:
		st.rstOut = true
		st.resetLocked(f.Code, f.Reason, &OpenError{Code: f.Code, Reason: f.Reason}, resetQuiet)
	case TypeData:
		n := int64(len(f.Data))
		if st.finRecv {
			st.resetLocked(CodeProtocol, "data after FIN", fmt.Errorf("%w: data after FIN", ErrProtocol), resetAnswer)
			return
		}
		if n > st.avail {
			st.resetLocked(CodeFlowControl, "data beyond the window", fmt.Errorf("%w: data beyond the window", ErrProtocol), resetAnswer)
			return
		}
		st.avail -= n
		if st.closed {
			// Nobody will read it: tell the peer to stop, as TCP does.
			st.resetLocked(CodeCanceled, "closed", net.ErrClosed, resetAnswer)
			return
		}
		kept = st.in.deliver(f.Data, fb)
		st.chargeLocked(n)
		wake(st.readWake)
	case TypeWindow:
		st.credit += int64(f.Window)
		st.enqueueLocked()
		wake(st.writeWake)
	case TypeFin:
		st.finRecv = true
		wake(st.readWake)
		s.forgetIfDoneLocked(st)
	case TypeRst:
		st.rstOut = true // never answer an RST with one
		st.resetLocked(f.Code, f.Reason, &ResetError{Code: f.Code, Reason: f.Reason}, resetByPeer)
	}
	return kept
}

func (s *Session) handleOpen(f Frame) {
	if s.client || s.cfg.OnOpen == nil {
		s.answer(Frame{Type: TypeRst, Stream: f.Stream, Code: CodeProtocol, Reason: "this end accepts no streams"})
		return
	}
	refuse := func(code Code, reason string) {
		s.answer(Frame{Type: TypeOpenFail, Stream: f.Stream, Code: code, Reason: reason})
	}
	if !s.roomForStream() {
		refuse(CodeOverloaded, "exit memory budget for this session reached")
		return
	}
	st := newStream(s, f.Stream, f.Target, int64(f.Window))
	st.openDone = true // the exit side's answer is its own: nobody waits for it
	if n := int64(len(f.Data)); n > 0 {
		st.avail -= n
		st.in.deliver(f.Data, nil) // copied: OPEN carries more than the payload
		st.chargeLocked(n)         // nobody else has the stream yet
	}
	s.mu.Lock()
	switch {
	case s.err != nil:
		s.mu.Unlock()
		st.unchargeAllLocked()
		return
	case s.streams[f.Stream] != nil:
		old := s.streams[f.Stream]
		s.mu.Unlock()
		st.unchargeAllLocked()
		// The id is spoiled: reset the stream that has it (one RST).
		old.mu.Lock()
		old.resetLocked(CodeProtocol, "stream id opened twice", fmt.Errorf("%w: stream id opened twice", ErrProtocol), resetAnswer)
		old.mu.Unlock()
		return
	case len(s.streams) >= s.cfg.MaxStreams:
		s.mu.Unlock()
		st.unchargeAllLocked()
		refuse(CodeOverloaded, fmt.Sprintf("more than %d streams in this session", s.cfg.MaxStreams))
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	st.cancel = cancel
	s.streams[f.Stream] = st
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer cancel()
		s.cfg.OnOpen(ctx, st, f.Target)
	}()
}
