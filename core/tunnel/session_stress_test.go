package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/xid"

	"porthole/internal/chantest"
)

// The seed's race scenarios, all through one session. Each names the target
// of its stream, so the exit's handler knows its part.
const (
	scEcho        = iota // echo with checksum
	scClientClose        // the client closes mid-transfer
	scExitClose          // the exit closes mid-transfer
	scClientReset        // the client resets mid-transfer
	scExitReset          // the exit resets mid-transfer
	scBothClose          // both ends close at the same moment
	scCloseOpen          // the client closes (or resets) right after Open, before OPEN_OK
	scRstData            // RST racing DATA: one side writes a burst, the other resets
	scCount
)

// wireSide counts what one side sent for one stream.
type wireSide struct {
	fin, rst       int
	finAfterRst    bool
	frameAfterRst  Type // first frame type sent after this side's own RST, 0 if none
	frameAfterRstN int
}

// wireCounter parses every frame crossing the man in the middle.
type wireCounter struct {
	mu     sync.Mutex
	sides  map[string]map[xid.ID]*wireSide // direction → stream → counts
	frames int
	bad    []string
}

func (c *wireCounter) see(dir string, msg []byte) {
	f, err := Parse(msg)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames++
	if err != nil {
		c.bad = append(c.bad, fmt.Sprintf("%s: undecodable frame: %v", dir, err))
		return
	}
	if f.Type == TypePing || f.Type == TypePong {
		return
	}
	m := c.sides[dir]
	if m == nil {
		m = map[xid.ID]*wireSide{}
		c.sides[dir] = m
	}
	s := m[f.Stream]
	if s == nil {
		s = &wireSide{}
		m[f.Stream] = s
	}
	if s.rst > 0 {
		if s.frameAfterRstN == 0 {
			s.frameAfterRst = f.Type
		}
		s.frameAfterRstN++
	}
	switch f.Type {
	case TypeFin:
		s.fin++
		if s.rst > 0 {
			s.finAfterRst = true
		}
	case TypeRst:
		s.rst++
	}
}

func (c *wireCounter) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.bad {
		t.Error(b)
	}
	streams, fins, rsts := 0, 0, 0
	for dir, m := range c.sides {
		for id, s := range m {
			streams++
			fins += s.fin
			rsts += s.rst
			if s.fin > 1 {
				t.Errorf("%s stream %s: %d FIN from the same side", dir, id, s.fin)
			}
			if s.rst > 1 {
				t.Errorf("%s stream %s: %d RST from the same side", dir, id, s.rst)
			}
			if s.finAfterRst {
				t.Errorf("%s stream %s: FIN after RST from the same side", dir, id)
			}
			if s.frameAfterRstN > 0 {
				t.Errorf("%s stream %s: %d frames (first %v) after its own RST", dir, id, s.frameAfterRstN, s.frameAfterRst)
			}
		}
	}
	t.Logf("wire: %d frames, %d (direction, stream) pairs, %d FIN, %d RST", c.frames, streams, fins, rsts)
}

// pump forwards messages from src to dst, counting each, until src fails;
// then it closes dst so the other pump and the far session end too.
func pump(dir string, src, dst *websocket.Conn, c *wireCounter) {
	defer dst.Close()
	for {
		kind, msg, err := src.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				_ = dst.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ce.Code, ce.Text), time.Now().Add(time.Second))
			}
			return
		}
		if kind == websocket.BinaryMessage {
			c.see(dir, msg)
		}
		if err := dst.WriteMessage(kind, msg); err != nil {
			return
		}
	}
}

// stressPair is sessionPair with a counting WebSocket man in the middle:
// client ⇄ mitm ⇄ exit. onOpen is the exit's handler.
func stressPair(t *testing.T, cfg Config, onOpen func(ctx context.Context, st *Stream, target string)) (client, exit *Session, wire *wireCounter, closeAll func()) {
	a, err := NewAcceptor("tok")
	if err != nil {
		t.Fatal(err)
	}
	exitSrv, exits := exitServer(a, cfg, onOpen)
	wire = &wireCounter{sides: map[string]map[xid.ID]*wireSide{}}
	var pumps sync.WaitGroup
	mitm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		down, err := a.Accept(w, r) // subprotocol, token and read limit as the exit does
		if err != nil {
			return
		}
		up, err := Dial(r.Context(), "ws"+strings.TrimPrefix(exitSrv.URL, "http"), "tok", DialOptions{Timeout: 10 * time.Second})
		if err != nil {
			_ = down.Close()
			return
		}
		pumps.Add(2)
		go func() { defer pumps.Done(); pump("client→exit", down, up, wire) }()
		go func() { defer pumps.Done(); pump("exit→client", up, down, wire) }()
	}))
	ws, err := Dial(context.Background(), "ws"+strings.TrimPrefix(mitm.URL, "http"), "tok", DialOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	client = NewSession(ws, true, cfg)
	exit = chantest.Within(t, 10*time.Second, "the exit session's start", exits)
	var once sync.Once
	closeAll = func() {
		once.Do(func() {
			client.Close()
			exit.Close()
			pumps.Wait()
			mitm.Close()
			exitSrv.Close()
		})
	}
	t.Cleanup(closeAll)
	return client, exit, wire, closeAll
}

// expectedEnd says whether err is a way a stream of these scenarios may
// end: closed locally, reset by the peer on purpose (code canceled), or EOF.
// Flow-control or protocol resets, tunnel loss and deadlines are failures.
func expectedEnd(err error) bool {
	var re *ResetError
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &re):
		return re.Code == CodeCanceled
	}
	return false
}

func TestStressOpenCloseOneSession(t *testing.T) {
	cycles := 2000
	if testing.Short() {
		cycles = 300
	}
	const workers = 10
	const streamTimeout = 30 * time.Second // a stalled stream fails instead of hanging

	var (
		opens    atomic.Int64                     // streams the client opened
		handled  = make(chan struct{}, cycles+16) // one per exit handler that ended
		barriers sync.Map                         // stream id → chan struct{}: both ends close together
		errMu    sync.Mutex
		errs     []string
	)
	fail := func(format string, args ...any) {
		errMu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		errMu.Unlock()
	}

	onOpen := func(_ context.Context, st *Stream, target string) {
		defer func() { handled <- struct{}{} }()
		var sc int
		if _, err := fmt.Sscanf(target, "sc%d:1", &sc); err != nil {
			st.Reset()
			fail("exit: bad target %q", target)
			return
		}
		if err := st.SetDeadline(time.Now().Add(streamTimeout)); err != nil {
			fail("exit: SetDeadline: %v", err)
		}
		st.Accept()
		check := func(what string, err error) {
			if !expectedEnd(err) {
				fail("exit %s sc%d: %s: %v", st.ID(), sc, what, err)
			}
		}
		switch sc {
		case scEcho, scClientClose, scClientReset, scCloseOpen:
			defer st.Close()
			_, err := io.Copy(st, st)
			if sc == scEcho && err != nil {
				fail("exit %s echo: copy: %v", st.ID(), err)
				return
			}
			check("copy", err)
			if err == nil {
				err = st.CloseWrite()
				if sc == scEcho && err != nil {
					fail("exit %s echo: CloseWrite: %v", st.ID(), err)
				}
				check("CloseWrite", err)
			}
		case scExitClose, scExitReset:
			_, err := io.ReadFull(st, make([]byte, 1024))
			check("read", err)
			if sc == scExitClose {
				st.Close()
			} else {
				st.Reset()
			}
		case scBothClose:
			// Stored before Open; the client deletes it only after it has
			// read what this handler writes below.
			v, ok := barriers.Load(st.ID())
			if !ok {
				fail("exit %s: no barrier", st.ID())
				st.Close()
				return
			}
			buf := make([]byte, 1000)
			_, err := io.ReadFull(st, buf)
			check("read", err)
			if err == nil {
				_, err = st.Write(buf)
				check("write", err)
			}
			select {
			case <-v.(chan struct{}):
			case <-time.After(streamTimeout):
				fail("exit %s: the client never reached the barrier", st.ID())
			}
			st.Close()
		case scRstData:
			if st.ID().Counter()%2 == 0 {
				// The exit writes a burst beyond the window; the client resets.
				defer st.Close()
				_, err := st.Write(make([]byte, 512<<10))
				check("burst", err)
			} else {
				// The client writes a burst; the exit resets after one byte.
				_, err := io.ReadFull(st, make([]byte, 1))
				check("read", err)
				st.Reset()
			}
		}
	}

	client, exit, wire, closeAll := stressPair(t, Config{}, onOpen)

	// worker runs one cycle of scenario sc on a fresh stream.
	cycle := func(r *rand.Rand, sc int) {
		id := xid.New()
		target := fmt.Sprintf("sc%d:1", sc)
		check := func(what string, err error) {
			if !expectedEnd(err) {
				fail("client %s sc%d: %s: %v", id, sc, what, err)
			}
		}
		// writeAsync writes data and reports how the write ended.
		writeAsync := func(st *Stream, data []byte) <-chan error {
			done := make(chan error, 1)
			go func() {
				_, err := st.Write(data)
				done <- err
			}()
			return done
		}
		var ch chan struct{}
		if sc == scBothClose {
			ch = make(chan struct{})
			barriers.Store(id, ch)
			defer barriers.Delete(id)
		}
		var early []byte
		switch sc {
		case scEcho:
			n := r.IntN(48 << 10)
			if r.IntN(10) == 0 {
				n = 300 << 10 // beyond the first window
			}
			early = make([]byte, n)
		case scBothClose:
			early = make([]byte, 1000)
		case scCloseOpen:
			early = make([]byte, r.IntN(2000))
		}
		for i := range early {
			early[i] = byte(r.Uint32())
		}
		data := early
		k := min(len(data), r.IntN(MaxData+1)) // sent in OPEN, the rest by Write
		st, err := client.Open(id, target, data[:k])
		if err != nil {
			fail("client sc%d: Open: %v", sc, err)
			return
		}
		opens.Add(1)
		if err := st.SetDeadline(time.Now().Add(streamTimeout)); err != nil {
			fail("client: SetDeadline: %v", err)
		}
		switch sc {
		case scEcho:
			written := writeAndFIN(st, data[k:]) // the exit echoes until EOF
			got, err := io.ReadAll(st)
			if err != nil {
				fail("client %s echo: read: %v", id, err)
			}
			if werr := <-written; werr != nil {
				fail("client %s echo: write: %v", id, werr)
			}
			if err == nil && sum(got) != sum(data) {
				fail("client %s echo: checksum mismatch: %d bytes back of %d", id, len(got), len(data))
			}
			st.Close()
		case scClientClose, scClientReset:
			burst := make([]byte, 64<<10+r.IntN(256<<10))
			written := writeAsync(st, burst)
			_, err := io.ReadFull(st, make([]byte, 1+r.IntN(4096)))
			check("read", err)
			if sc == scClientClose {
				st.Close()
			} else {
				st.Reset()
			}
			check("write", <-written)
		case scExitClose, scExitReset:
			burst := make([]byte, 64<<10+r.IntN(256<<10))
			written := writeAsync(st, burst)
			_, err := io.Copy(io.Discard, st)
			check("read", err)
			if sc == scExitReset && !errors.Is(err, ErrReset) {
				fail("client %s: read after the exit reset: %v, want ErrReset", id, err)
			}
			st.Close()
			check("write", <-written)
		case scBothClose:
			if k < len(data) {
				check("write", <-writeAsync(st, data[k:]))
			}
			back := make([]byte, 1000)
			_, err := io.ReadFull(st, back)
			check("read", err)
			close(ch)
			st.Close()
		case scCloseOpen:
			if k < len(data) {
				check("write", <-writeAsync(st, data[k:]))
			}
			if r.IntN(2) == 0 {
				st.Close()
			} else {
				st.Reset()
			}
		case scRstData:
			if id.Counter()%2 == 0 {
				_, err := io.ReadFull(st, make([]byte, 1))
				check("read", err)
				st.Reset()
			} else {
				written := writeAsync(st, make([]byte, 512<<10))
				_, err := io.Copy(io.Discard, st)
				if !errors.Is(err, ErrReset) {
					fail("client %s: read after the exit reset: %v, want ErrReset", id, err)
				}
				check("write", <-written)
				st.Close()
			}
		}
	}

	var wg sync.WaitGroup
	next := make(chan int)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range next {
				cycle(r, i%scCount)
			}
		}()
	}
	allDone := make(chan struct{})
	go func() {
		for i := range cycles {
			next <- i
		}
		close(next)
		wg.Wait()
		close(allDone)
	}()
	select {
	case <-allDone:
	case <-time.After(5 * time.Minute):
		closeAll() // unblocks every stream, so the workers end
		<-allDone
		t.Fatal("the stress cycles did not finish")
	}

	// Every client stream has ended at the client; wait for the exit's
	// handlers, then flush the frames still crossing (an RST answering DATA
	// that reached a closed stream, the last FIN): a few sequential echo
	// round trips, each ordered behind everything either side sent before.
	waitHandlers := func() {
		for range opens.Swap(0) {
			chantest.Within(t, time.Minute, "the exit handlers' end", handled)
		}
	}
	waitHandlers()
	for range 3 {
		cycle(rand.New(rand.NewPCG(1, 1)), scEcho)
		waitHandlers()
	}

	errMu.Lock()
	for _, e := range errs {
		t.Error(e)
	}
	errMu.Unlock()

	for _, s := range []*Session{client, exit} {
		side := "exit"
		if s.client {
			side = "client"
		}
		s.mu.Lock()
		left := len(s.streams)
		var some []string
		for id, st := range s.streams {
			if len(some) < 5 {
				some = append(some, id.String()+" "+st.target)
			}
		}
		s.mu.Unlock()
		if left != 0 {
			t.Errorf("%s: %d streams still in the session's map after all ended, e.g. %v", side, left, some)
		}
		if b := s.budget.Load(); b != s.cfg.Budget {
			t.Errorf("%s: budget %d of %d: %d bytes never released", side, b, s.cfg.Budget, s.cfg.Budget-b)
		}
		if err := s.Err(); err != nil {
			t.Errorf("%s session ended: %v", side, err)
		}
	}
	wire.check(t)
	closeAll()
}
