package tunnel

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/xid"
)

var sid = xid.New()

func validFrames() []Frame {
	return []Frame{
		{Type: TypeOpen, Stream: sid, Window: 256 << 10, Target: "example.com:443"},
		{Type: TypeOpen, Stream: sid, Window: 1, Target: "[2001:db8::1]:80", Data: []byte("GET / HTTP/1.1\r\n\r\n")},
		{Type: TypeOpen, Stream: sid, Window: 1, Target: strings.Repeat("a", MaxTarget), Data: bytes.Repeat([]byte{7}, MaxData)},
		{Type: TypeOpenOK, Stream: sid, Window: 16 << 20},
		{Type: TypeOpenOK, Stream: sid, Window: 1 << 18, Target: "[2001:db8::1]:443"},
		{Type: TypeOpenFail, Stream: sid, Code: CodeDenied, Reason: "10.0.0.1 is a private address"},
		{Type: TypeOpenFail, Stream: sid, Code: CodeTimeout},
		{Type: TypeData, Stream: sid, Data: []byte{0}},
		{Type: TypeData, Stream: sid, Data: bytes.Repeat([]byte("x"), MaxData)},
		{Type: TypeWindow, Stream: sid, Window: 1 << 31},
		{Type: TypeFin, Stream: sid},
		{Type: TypeRst, Stream: sid, Code: CodeCanceled, Reason: "closed by user ✓"},
		{Type: TypePing, Time: 1234567890123},
		{Type: TypePong, Time: 0},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range validFrames() {
		b, err := Append(nil, &f)
		if err != nil {
			t.Fatalf("Append(%v): %v", f.Type, err)
		}
		if len(b) > MaxFrameSize {
			t.Errorf("%v: %d bytes, over MaxFrameSize %d", f.Type, len(b), MaxFrameSize)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(%v): %v", f.Type, err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("round trip of %v:\n got %+v\nwant %+v", f.Type, got, f)
		}
	}
}

func TestParseRejects(t *testing.T) {
	ok := func(f Frame) []byte {
		b, err := Append(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hdr := func(ty Type, id xid.ID) []byte { return append([]byte{byte(ty)}, id[:]...) }
	cases := map[string][]byte{
		"empty":                nil,
		"short header":         hdr(TypeData, sid)[:5],
		"unknown type":         hdr(0x42, sid),
		"zero type":            hdr(0, sid),
		"empty DATA":           hdr(TypeData, sid),
		"oversized DATA":       append(hdr(TypeData, sid), make([]byte, MaxData+1)...),
		"DATA on stream 0":     append(hdr(TypeData, xid.ID{}), 1),
		"PING on a stream":     append(hdr(TypePing, sid), make([]byte, 8)...),
		"short PING":           append(hdr(TypePing, xid.ID{}), make([]byte, 7)...),
		"long PONG":            append(hdr(TypePong, xid.ID{}), make([]byte, 9)...),
		"WINDOW of 0":          append(hdr(TypeWindow, sid), 0, 0, 0, 0),
		"short WINDOW":         append(hdr(TypeWindow, sid), 0, 1),
		"FIN with payload":     append(hdr(TypeFin, sid), 1),
		"OPEN_OK remote ctrl":  append(hdr(TypeOpenOK, sid), 0, 0, 0, 1, '1', '\n'),
		"OPEN_OK remote space": append(hdr(TypeOpenOK, sid), 0, 0, 0, 1, 'a', ' ', 'b'),
		"OPEN_OK short":        append(hdr(TypeOpenOK, sid), 0, 0, 1),
		"OPEN no target":       append(hdr(TypeOpen, sid), 0, 0, 0, 1, 0, 0),
		"OPEN target too long": append(append(hdr(TypeOpen, sid), 0, 0, 0, 1, 1, 6), make([]byte, 262)...),
		"OPEN truncated":       ok(Frame{Type: TypeOpen, Stream: sid, Window: 1, Target: "example.com:80"})[:HeaderSize+10],
		"OPEN early too long":  append(ok(Frame{Type: TypeOpen, Stream: sid, Window: 1, Target: "a:1"}), make([]byte, MaxData+1)...),
		"RST no code":          hdr(TypeRst, sid),
		"RST bad UTF-8":        append(hdr(TypeRst, sid), 1, 0xff, 0xfe),
		"RST reason too long":  append(append(hdr(TypeRst, sid), 1), bytes.Repeat([]byte("r"), MaxReason+1)...),
	}
	for name, b := range cases {
		if f, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %+v, %v; want an ErrMalformed", name, f, err)
		}
	}
}

func TestAppendRefusesWhatParseWouldReject(t *testing.T) {
	for _, f := range []Frame{
		{Type: TypeData, Stream: sid},
		{Type: TypeData, Stream: sid, Data: make([]byte, MaxData+1)},
		{Type: TypeData, Data: []byte{1}},
		{Type: TypePing, Stream: sid},
		{Type: TypeWindow, Stream: sid},
		{Type: TypeOpen, Stream: sid},
		{Type: TypeRst, Stream: sid, Reason: "\xff"},
		{Type: 0x42, Stream: sid},
	} {
		dst := []byte("keep")
		out, err := Append(dst, &f)
		if !errors.Is(err, ErrMalformed) || string(out) != "keep" {
			t.Errorf("Append(%+v) = %q, %v; want an error and dst unchanged", f, out, err)
		}
	}
}

// FuzzParse: any input either fails with ErrMalformed or parses to a frame
// that encodes back to exactly the same bytes (the encoding is canonical).
func FuzzParse(f *testing.F) {
	for _, fr := range validFrames() {
		if len(fr.Data) > 64 || len(fr.Target) > 64 {
			continue // big seeds make the fuzzer's minimisation crawl
		}
		b, err := Append(nil, &fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{byte(TypeOpen)})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := Append(nil, &fr)
		if err != nil {
			t.Fatalf("parsed %+v but cannot encode it: %v", fr, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("not canonical:\n in %x\nout %x", b, out)
		}
	})
}
