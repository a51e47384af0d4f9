package tunnel

import (
	"io"
	"log/slog"
	"testing"

	"github.com/rs/xid"
)

// An RST the peer provoked jumps ahead of our own control frames; the
// stream's FIN or WINDOW still queued must then never follow it (found by
// the open/close stress test: "FIN after RST from the same side").
func TestRSTAnswerSupersedesQueuedFrames(t *testing.T) {
	s := &Session{log: slog.New(slog.NewTextHandler(io.Discard, nil)), wakeWriter: make(chan struct{}, 1)}
	a, b := xid.New(), xid.New()
	s.control(Frame{Type: TypeFin, Stream: a})
	s.control(Frame{Type: TypeWindow, Stream: a, Window: 1 << 16})
	s.control(Frame{Type: TypeFin, Stream: b})
	s.control(Frame{Type: TypePing, Time: 1})
	s.answer(Frame{Type: TypeRst, Stream: a, Code: CodeProtocol, Reason: "bad"})

	var ctrl []Type
	for _, f := range s.ctrl {
		p, err := Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		if p.Stream == a {
			t.Errorf("a %v of the reset stream is still queued", p.Type)
		}
		ctrl = append(ctrl, p.Type)
	}
	if len(ctrl) != 2 || ctrl[0] != TypeFin || ctrl[1] != TypePing {
		t.Errorf("control queue %v, want the other stream's FIN and the PING", ctrl)
	}
	if len(s.answers) != 1 {
		t.Fatalf("%d answers, want the RST", len(s.answers))
	}

	// With the stream's OPEN still queued, the RST waits behind it.
	c := xid.New()
	s.control(Frame{Type: TypeOpen, Stream: c, Target: "example.com:443", Window: DefaultWindow})
	s.answer(Frame{Type: TypeRst, Stream: c, Code: CodeProtocol, Reason: "bad"})
	last, err := Parse(s.ctrl[len(s.ctrl)-1])
	if err != nil {
		t.Fatal(err)
	}
	if last.Type != TypeRst || last.Stream != c || len(s.answers) != 1 {
		t.Errorf("RST for a stream whose OPEN is queued: last control %v, %d answers", last.Type, len(s.answers))
	}
}
