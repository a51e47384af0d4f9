package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
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

// DefaultMaxWindow is how far auto-tuning grows a stream's window unless
// Config.MaxWindow says otherwise.
const DefaultMaxWindow = 32 << 20

// Config tunes a session; zero values take the defaults.
type Config struct {
	Window       uint32        // first receive window per stream; default DefaultWindow
	MaxWindow    uint32        // auto-tuning limit; default DefaultMaxWindow
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
	ping     pingWaiters
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
		cfg.MaxWindow = max(DefaultMaxWindow, cfg.Window)
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

// reserveGrowth charges n bytes of window growth to the budget unless that
// would leave less than a quarter of it: growth is what fast streams ask
// for, and the rest must stay for new streams and for what slow readers
// hold unread, so a few bulk downloads never make the session refuse
// streams.
func (s *Session) reserveGrowth(n int64) bool {
	if s.budget.Add(-n) < s.cfg.Budget/4 {
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
//
// Yields: the session's reader and writer are the busiest goroutines of a
// bulk transfer, and each readies other goroutines as it goes: the writer,
// a stream's Write whose bytes it has taken (sendData); the reader, a
// stream's Read or WriteUnreadTo whose bytes have come (handle). Go runs a
// goroutine readied this way next on the same P, and, unless another P
// steals it, only once the one that readied it blocks; neither blocks
// while there is work: the writer always has bytes to send, the reader a
// socket that is never empty. The stream then waited, holding its source's next bytes or its
// window's credit, and the two worked in turns instead of side by side. So
// the writer yields after each full batch and the reader after each
// message, and what they readied runs at once while they go on. Measured
// on 2 cores (client and exit on loopback, paired runs, against the code
// without them): one-stream download and upload 10-20 % faster with less
// CPU per byte on both ends, and an echo's p99 under 4 bulk downloads
// about 12 ms before, 9.5-10.5 after; connection setup and 64 streams did
// not change.
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
		if b.full() {
			if !flush() {
				return
			}
			// A full batch went out: the streams drained into it run
			// now, beside the writer (see Yields above).
			runtime.Gosched()
		}
	}
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
	// Dead is three intervals of silence seen on three ticks in a row.
	// The clock alone is not enough: a process starved of CPU (a loaded
	// laptop, a long GC pause) wakes with a late tick before its reader
	// has run, and the silence it measures is its own, not the peer's.
	// The ticker drops the ticks it missed, so a stall counts once.
	seen, silent := s.lastRecv.Load(), 0
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			now := time.Since(s.start)
			last := s.lastRecv.Load()
			if last != seen {
				seen, silent = last, 0
			} else {
				silent++
			}
			if silent >= 3 && now-time.Duration(last) > 3*s.cfg.PingInterval {
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
