package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/rs/xid"
)

// DefaultWindow is every stream's first window, and what a client may send
// before OPEN_OK.
const DefaultWindow = 256 << 10

// Config tunes a session; zero values take the defaults.
type Config struct {
	Window       uint32        // first receive window per stream; default DefaultWindow
	MaxWindow    uint32        // auto-tuning limit; default 16 MiB
	Budget       int64         // bytes of receive windows for all streams together; default 256 MiB
	MaxStreams   int           // streams the peer may open (exit); default 4096
	PingInterval time.Duration // default 15 s
	Logger       *slog.Logger
	// OnOpen (exit side) handles a stream the peer opened, in its own
	// goroutine: it dials target and calls Accept or Refuse. ctx ends when
	// the stream is reset or the session ends, so a dial in progress stops
	// then. The session waits for OnOpen on Close, so it must end when the
	// stream does, and it must not call Session.Close itself.
	OnOpen func(ctx context.Context, st *Stream, target string)

	// fixedRTT, set by tests, replaces the measured round trip.
	fixedRTT time.Duration
}

// writeTimeout bounds one write of the writer's batch (at most batchSize
// plus one frame): a peer that takes longer to accept that is not reading,
// and the session ends rather than hold every stream hostage.
func (c *Config) writeTimeout() time.Duration { return max(3*c.PingInterval, 5*time.Second) }

// Session is one WebSocket carrying many streams.
//
// Concurrency: one reader goroutine decodes frames and hands them to
// streams; one writer goroutine sends control frames first, then DATA from
// the streams round-robin, at most MaxData at a time; a pinger measures the
// round trip and declares the session dead after three silent intervals.
// Lock order is Stream.mu before Session.mu; the session never takes a
// stream's lock while holding its own. Close is idempotent and returns when
// every goroutine the session started, OnOpen handlers included, has ended.
type Session struct {
	ws     *websocket.Conn
	cfg    Config
	log    *slog.Logger
	client bool
	local  string

	start    time.Time    // PING times and lastRecv count from here (monotonic)
	budget   atomic.Int64 // Budget minus what the streams are charged; may go below 0
	rtt      atomic.Int64 // nanoseconds, 0 until measured
	lastRecv atomic.Int64 // nanoseconds since start of the last frame read

	ctx    context.Context // ends with the session; OnOpen contexts derive from it
	cancel context.CancelFunc

	mu       sync.Mutex
	streams  map[xid.ID]*Stream
	ctrl     [][]byte  // encoded control frames, oldest first
	answers  [][]byte  // frames the peer provoked (PONG, refusals of its OPENs), capped
	ready    []*Stream // streams with data and credit
	overflow bool      // answers reached maxAnswers: the peer is not reading
	err      error

	wakeWriter chan struct{}
	done       chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup
}

// NewSession runs a session over ws; client says which end it is.
func NewSession(ws *websocket.Conn, client bool, cfg Config) *Session {
	if cfg.Window < DefaultWindow {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxWindow < cfg.Window {
		cfg.MaxWindow = max(16<<20, cfg.Window)
	}
	if cfg.Budget <= 0 {
		cfg.Budget = 256 << 20
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 4096
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Session{
		ws: ws, cfg: cfg, log: cfg.Logger, client: client, local: ws.LocalAddr().String(),
		start:      time.Now(),
		streams:    make(map[xid.ID]*Stream),
		wakeWriter: make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.budget.Store(cfg.Budget)
	limitUnsent(ws.UnderlyingConn())
	s.wg.Add(3)
	go s.readLoop()
	go s.writeLoop()
	go s.pingLoop()
	return s
}

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended, nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// NumStreams is how many streams the session holds now.
func (s *Session) NumStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// RTT is the last measured round trip, 0 before the first PONG.
func (s *Session) RTT() time.Duration {
	if s.cfg.fixedRTT != 0 {
		return s.cfg.fixedRTT
	}
	return time.Duration(s.rtt.Load())
}

// Open starts a stream to target with id (the registry's) and returns at
// once: the caller may write early data right away, within DefaultWindow,
// and learns the exit's answer from WaitOpen or from its first Read.
// Early data is at most MaxData bytes.
func (s *Session) Open(id xid.ID, target string, early []byte) (*Stream, error) {
	if len(early) > MaxData {
		return nil, fmt.Errorf("%d bytes of early data, at most %d: %w", len(early), MaxData, ErrTooLarge)
	}
	if !s.roomForStream() {
		return nil, &OpenError{Code: CodeOverloaded, Reason: "session receive budget exhausted"}
	}
	st := newStream(s, id, target, DefaultWindow-int64(len(early)))
	f := Frame{Type: TypeOpen, Stream: id, Window: s.cfg.Window, Target: target, Data: early}
	b, err := Append(nil, &f)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if _, dup := s.streams[id]; dup {
		return nil, fmt.Errorf("stream %s is already open: %w", id, ErrProtocol)
	}
	s.streams[id] = st
	s.ctrl = append(s.ctrl, b)
	wake(s.wakeWriter)
	return st, nil
}

// Accept (exit side) answers the stream's OPEN with OPEN_OK.
// It is answered once: a second Accept, or one after the stream was reset,
// sends nothing.
func (st *Stream) Accept() { st.AcceptFrom("") }

// AcceptFrom is Accept telling the client which address the exit connected
// to (the target's resolved IP and port), for its inspector; an address
// that cannot be sent is left out.
func (st *Stream) AcceptFrom(remote string) {
	if checkRemote([]byte(remote)) != nil {
		remote = ""
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err == nil && !st.answered {
		st.answered = true
		// An answer to the peer's OPEN: capped, and sent before our own
		// control frames, so nothing of this stream's overtakes it.
		st.sess.answer(Frame{Type: TypeOpenOK, Stream: st.id, Window: st.sess.cfg.Window, Target: remote})
	}
}

// Refuse (exit side) answers the stream's OPEN with OPEN_FAIL and ends it;
// after Accept it resets the stream instead.
func (st *Stream) Refuse(code Code, reason string) {
	reason = clampReason(reason)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err != nil {
		return
	}
	if st.answered {
		st.resetLocked(code, reason, &OpenError{Code: code, Reason: reason}, resetOwn)
		return
	}
	st.answered = true
	st.rstOut = true // the OPEN_FAIL is this stream's last frame
	st.sess.answer(Frame{Type: TypeOpenFail, Stream: st.id, Code: code, Reason: reason})
	st.resetLocked(code, reason, &OpenError{Code: code, Reason: reason}, resetQuiet)
}

// control queues a control frame of our own streams; it is dropped once
// the session ended. Their number is bounded by the streams and their
// flow control.
func (s *Session) control(f Frame) { s.queue(f, false) }

// answer queues a frame the peer provoked: a PONG, or the refusal of an
// OPEN. A peer can provoke them without bound, so they are capped.
func (s *Session) answer(f Frame) { s.queue(f, true) }

// supersedeLocked drops the stream's own control frames still queued (a
// FIN, a WINDOW): an RST answer is sent before them, and nothing of a
// stream may follow its RST. It reports whether the stream's OPEN is still
// queued, in which case the RST must wait behind it instead.
func (s *Session) supersedeLocked(id xid.ID) (openQueued bool) {
	kept := s.ctrl[:0]
	for _, b := range s.ctrl {
		if Type(b[0]) != TypeOpen && xid.ID(b[1:HeaderSize]) == id {
			continue
		}
		openQueued = openQueued || xid.ID(b[1:HeaderSize]) == id
		kept = append(kept, b)
	}
	clear(s.ctrl[len(kept):])
	s.ctrl = kept
	return openQueued
}

// maxAnswers caps queued answers: a peer that provokes more without
// reading what we send is not reading.
const maxAnswers = 1024

func (s *Session) queue(f Frame, provoked bool) {
	f.Reason = clampReason(f.Reason)
	b, err := Append(nil, &f)
	if err != nil {
		s.log.Warn("tunnel: frame not encodable", "type", f.Type, "err", err)
		return
	}
	s.mu.Lock()
	if provoked && f.Type == TypeRst && s.supersedeLocked(f.Stream) {
		provoked = false // the stream's OPEN is still queued: the RST goes after it
	}
	switch {
	case s.err != nil:
	case !provoked:
		s.ctrl = append(s.ctrl, b)
	case len(s.answers) >= maxAnswers:
		// The writer, which holds no stream lock, ends the session.
		s.overflow = true
	default:
		s.answers = append(s.answers, b)
	}
	s.mu.Unlock()
	wake(s.wakeWriter)
}

func (s *Session) markReady(st *Stream) {
	s.mu.Lock()
	if s.err == nil {
		s.ready = append(s.ready, st)
	}
	s.mu.Unlock()
	wake(s.wakeWriter)
}

func (s *Session) forget(st *Stream) {
	s.mu.Lock()
	if s.streams[st.id] == st {
		delete(s.streams, st.id)
	}
	s.mu.Unlock()
}

// forgetIfDoneLocked forgets a stream both of whose directions ended; the
// caller holds st.mu.
func (s *Session) forgetIfDoneLocked(st *Stream) {
	if st.finSent && st.finRecv {
		st.unchargeGrowthLocked() // unread bytes stay charged until read or closed
		s.forget(st)
	}
}

// roomForStream says whether the budget has room for one more stream's
// first window. The first window is charged only as bytes arrive; a
// stream's growth beyond it is charged when granted (see Stream.charged).
func (s *Session) roomForStream() bool { return s.budget.Load() >= int64(s.cfg.Window) }

func (s *Session) reserve(n int64) bool {
	if s.budget.Add(-n) < 0 {
		s.budget.Add(n)
		return false
	}
	return true
}

func (s *Session) release(n int64) { s.budget.Add(n) }

// Close ends the session: every stream ends with ErrTunnelLost, the
// WebSocket is closed, and Close waits for the session's goroutines.
func (s *Session) Close() error {
	s.shutdown(nil)
	s.wg.Wait()
	return nil
}

// shutdown ends the session once; cause nil means closed on purpose.
func (s *Session) shutdown(cause error) {
	s.closeOnce.Do(func() {
		err := ErrTunnelLost
		if cause != nil {
			err = fmt.Errorf("%w: %w", ErrTunnelLost, cause)
		}
		s.mu.Lock()
		s.err = err
		streams := make([]*Stream, 0, len(s.streams))
		for _, st := range s.streams {
			streams = append(streams, st)
		}
		s.streams, s.ctrl, s.answers, s.ready = map[xid.ID]*Stream{}, nil, nil, nil
		s.mu.Unlock()
		close(s.done)
		s.cancel()
		for _, st := range streams {
			st.mu.Lock()
			st.resetLocked(CodeSessionLost, "", err, resetQuiet)
			st.mu.Unlock()
		}
		// A close frame is a courtesy; the socket is closed either way.
		status := websocket.CloseNormalClosure
		if errors.Is(cause, ErrProtocol) {
			status = websocket.CloseProtocolError
		}
		_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(status, ""), time.Now().Add(time.Second))
		_ = s.ws.Close()
	})
}

// writeLoop sends what the session has queued: answers first, then our
// own control frames, then DATA round-robin. Frames are gathered in a batch
// and written out when the batch is full or nothing else is queued, so a
// lone frame is never held back waiting for company.
func (s *Session) writeLoop() {
	defer s.wg.Done()
	b := newBatch(s.ws.UnderlyingConn(), s.client)
	flush := func() bool {
		if err := b.flush(s.cfg.writeTimeout()); err != nil {
			if isTimeout(err) {
				err = fmt.Errorf("%w: a write waited %v: %w", ErrNotReading, s.cfg.writeTimeout(), err)
			}
			s.shutdown(err)
			return false
		}
		return true
	}
	for {
		s.mu.Lock()
		for len(s.ctrl) == 0 && len(s.answers) == 0 && len(s.ready) == 0 && s.err == nil && !s.overflow {
			if !b.empty() {
				s.mu.Unlock()
				if !flush() {
					return
				}
				s.mu.Lock()
				continue
			}
			s.mu.Unlock()
			select {
			case <-s.wakeWriter:
			case <-s.done:
			}
			s.mu.Lock()
		}
		if s.err != nil {
			s.mu.Unlock()
			return
		}
		if s.overflow {
			s.mu.Unlock()
			s.shutdown(fmt.Errorf("%w: control frames piled up", ErrNotReading))
			return
		}
		var frame []byte
		var st *Stream
		// Answers first: OPEN_OK must precede the stream's own frames,
		// and a PONG that waits skews the round trip.
		if len(s.answers) > 0 {
			frame = s.answers[0]
			s.answers[0] = nil
			s.answers = s.answers[1:]
		} else if len(s.ctrl) > 0 {
			frame = s.ctrl[0]
			s.ctrl[0] = nil
			s.ctrl = s.ctrl[1:]
		} else {
			st = s.ready[0]
			s.ready[0] = nil
			s.ready = s.ready[1:]
		}
		s.mu.Unlock()
		if st != nil {
			if st.sendData(b) {
				s.markReady(st) // to the back: round-robin
			}
		} else {
			b.add(frame)
		}
		if b.full() && !flush() {
			return
		}
	}
}

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
		st.openDone = true
		st.remote = f.Target
		close(st.opened)
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
	st.openDone = true
	close(st.opened)
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

// clampReason makes a reason fit a frame: valid UTF-8, at most MaxReason
// bytes, cut on a character boundary.
func clampReason(r string) string {
	r = strings.ToValidUTF8(r, "?")
	for len(r) > MaxReason {
		_, size := utf8.DecodeLastRuneInString(r[:MaxReason+1])
		r = r[:MaxReason+1-size]
	}
	return r
}

func (s *Session) pingLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	// A first PING at once: window auto-tuning needs the round trip from
	// the first transfer on, not after one interval.
	s.control(Frame{Type: TypePing, Time: uint64(max(time.Since(s.start), 1))})
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			now := time.Since(s.start)
			if now-time.Duration(s.lastRecv.Load()) > 3*s.cfg.PingInterval {
				s.shutdown(ErrSessionDead)
				return
			}
			s.control(Frame{Type: TypePing, Time: uint64(now)})
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
