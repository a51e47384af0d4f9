// Package tunnel is Porthole's multiplexing protocol: many connections over
// one WebSocket, each a stream named by its registry xid. This file is the
// frame codec: pure functions over byte slices, no I/O, so that it can be
// fuzzed and a second implementation can be checked against it. The wire
// format is specified in PROTOCOL.md.
package tunnel

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/rs/xid"
)

// Type is a frame's type, its first byte.
type Type uint8

const (
	TypeOpen     Type = 0x01 // open a stream to a target, with a window and optional early data
	TypeOpenOK   Type = 0x02 // the target is connected; carries the acceptor's window
	TypeOpenFail Type = 0x03 // the target could not be reached: code and reason
	TypeData     Type = 0x04 // stream bytes, at most MaxData
	TypeWindow   Type = 0x05 // credit: the sender may send this many more bytes
	TypeFin      Type = 0x06 // no more data from this side (half-close)
	TypeRst      Type = 0x07 // abort the stream: code and reason
	TypePing     Type = 0x08 // liveness and RTT; stream id zero
	TypePong     Type = 0x09 // answer to a PING, echoing its time
)

var typeNames = [...]string{
	TypeOpen: "OPEN", TypeOpenOK: "OPEN_OK", TypeOpenFail: "OPEN_FAIL", TypeData: "DATA", TypeWindow: "WINDOW",
	TypeFin: "FIN", TypeRst: "RST", TypePing: "PING", TypePong: "PONG",
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%#02x)", uint8(t))
}

// Code says why an OPEN failed or a stream was reset.
type Code uint8

const (
	CodeOther       Code = 0x01 // anything else; the reason says more
	CodeTimeout     Code = 0x02 // dialling the target timed out
	CodeRefused     Code = 0x03 // the target refused the connection
	CodeUnreachable Code = 0x04 // no route to the target
	CodeNotFound    Code = 0x05 // the target's name does not resolve
	CodeDenied      Code = 0x06 // the exit's policy refuses the target
	CodeOverloaded  Code = 0x07 // a per-session cap (streams, memory) is reached
	CodeProtocol    Code = 0x08 // the peer broke the protocol on this stream
	CodeFlowControl Code = 0x09 // the peer sent more than its window allowed
	CodeCanceled    Code = 0x0A // the stream's owner aborted it (closed by user, stopped)
	CodeSessionLost Code = 0x0B // the session is ending
)

// Sizes of the wire format.
const (
	HeaderSize   = 1 + len(xid.ID{}) // type and stream id
	MaxData      = 32 << 10          // DATA payload, and OPEN early data
	MaxTarget    = 261               // "host:port": a 253-byte name, ':' and 5 digits, plus brackets
	MaxReason    = 1024              // OPEN_FAIL and RST reasons, UTF-8
	MaxFrameSize = HeaderSize + 4 + 2 + MaxTarget + MaxData
)

var codeNames = [...]string{
	CodeOther: "other", CodeTimeout: "timeout", CodeRefused: "refused", CodeUnreachable: "unreachable",
	CodeNotFound: "not found", CodeDenied: "denied", CodeOverloaded: "overloaded", CodeProtocol: "protocol",
	CodeFlowControl: "flow control", CodeCanceled: "canceled", CodeSessionLost: "session lost",
}

func (c Code) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return fmt.Sprintf("code 0x%02x", uint8(c))
}

// Frame is one decoded frame. Which fields mean something depends on Type;
// the others are zero. Data aliases the buffer the frame was parsed from.
type Frame struct {
	Type   Type
	Stream xid.ID // zero for PING and PONG
	Window uint32 // OPEN, OPEN_OK: initial window; WINDOW: increment (> 0)
	Target string // OPEN: host:port; OPEN_OK: the address the exit connected to, or ""
	Code   Code   // OPEN_FAIL, RST
	Reason string // OPEN_FAIL, RST
	Data   []byte // DATA (1..MaxData bytes), OPEN early data (0..MaxData)
	Time   uint64 // PING, PONG: the pinger's clock, echoed
}

// Parse decodes one frame (one WebSocket message). It never allocates more
// than the frame's own strings and never panics; any error wraps
// ErrMalformed.
func Parse(b []byte) (Frame, error) {
	if len(b) < HeaderSize {
		return Frame{}, ErrTruncated
	}
	f := Frame{Type: Type(b[0])}
	copy(f.Stream[:], b[1:HeaderSize])
	p := b[HeaderSize:]
	switch f.Type {
	case TypeOpen:
		if len(p) < 6 {
			return Frame{}, ErrTruncated
		}
		f.Window = binary.BigEndian.Uint32(p)
		n := int(binary.BigEndian.Uint16(p[4:]))
		p = p[6:]
		if n == 0 || n > MaxTarget {
			return Frame{}, fmt.Errorf("%w: target of %d bytes", ErrTooLarge, n)
		}
		if len(p) < n {
			return Frame{}, ErrTruncated
		}
		f.Target, p = string(p[:n]), p[n:]
		if len(p) > MaxData {
			return Frame{}, fmt.Errorf("%w: %d bytes of early data", ErrTooLarge, len(p))
		}
		if len(p) > 0 {
			f.Data = p
		}
	case TypeOpenOK:
		if len(p) < 4 {
			return Frame{}, ErrTruncated
		}
		f.Window = binary.BigEndian.Uint32(p)
		if err := checkRemote(p[4:]); err != nil {
			return Frame{}, err
		}
		f.Target = string(p[4:])
	case TypeOpenFail, TypeRst:
		if len(p) < 1 {
			return Frame{}, ErrTruncated
		}
		f.Code = Code(p[0])
		if len(p)-1 > MaxReason {
			return Frame{}, fmt.Errorf("%w: reason of %d bytes", ErrTooLarge, len(p)-1)
		}
		if !utf8.Valid(p[1:]) {
			return Frame{}, fmt.Errorf("%w: reason is not UTF-8", ErrBadField)
		}
		f.Reason = string(p[1:])
	case TypeData:
		if len(p) == 0 {
			return Frame{}, fmt.Errorf("%w: empty DATA", ErrBadField)
		}
		if len(p) > MaxData {
			return Frame{}, fmt.Errorf("%w: %d bytes of DATA", ErrTooLarge, len(p))
		}
		f.Data = p
	case TypeWindow:
		if len(p) != 4 {
			return Frame{}, sizeErr(len(p), 4)
		}
		f.Window = binary.BigEndian.Uint32(p)
		if f.Window == 0 {
			return Frame{}, fmt.Errorf("%w: WINDOW of 0", ErrBadField)
		}
	case TypeFin:
		if len(p) != 0 {
			return Frame{}, ErrTrailing
		}
	case TypePing, TypePong:
		if len(p) != 8 {
			return Frame{}, sizeErr(len(p), 8)
		}
		f.Time = binary.BigEndian.Uint64(p)
	default:
		return Frame{}, fmt.Errorf("%w %#02x", ErrUnknownType, b[0])
	}
	if f.Stream.IsZero() != (f.Type == TypePing || f.Type == TypePong) {
		return Frame{}, fmt.Errorf("%w: stream id of a %v frame", ErrBadField, f.Type)
	}
	return f, nil
}

// checkRemote checks OPEN_OK's remote address: at most MaxTarget bytes of
// printable ASCII (it is shown to people and logged).
func checkRemote(r []byte) error {
	if len(r) > MaxTarget {
		return fmt.Errorf("%w: remote address of %d bytes", ErrTooLarge, len(r))
	}
	for _, c := range r {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("%w: remote address is not printable ASCII", ErrBadField)
		}
	}
	return nil
}

func sizeErr(got, want int) error {
	if got < want {
		return ErrTruncated
	}
	return ErrTrailing
}

// Append encodes f onto dst. It checks the same limits Parse does, so
// whatever it encodes a peer can decode.
// On error dst is returned unchanged.
func Append(dst []byte, f *Frame) ([]byte, error) {
	out, err := appendFrame(dst, f)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func appendFrame(dst []byte, f *Frame) ([]byte, error) {
	if f.Stream.IsZero() != (f.Type == TypePing || f.Type == TypePong) {
		return dst, fmt.Errorf("%w: stream id of a %v frame", ErrBadField, f.Type)
	}
	dst = append(dst, byte(f.Type))
	dst = append(dst, f.Stream[:]...)
	switch f.Type {
	case TypeOpen:
		if len(f.Target) == 0 || len(f.Target) > MaxTarget {
			return dst, fmt.Errorf("%w: target of %d bytes", ErrTooLarge, len(f.Target))
		}
		if len(f.Data) > MaxData {
			return dst, fmt.Errorf("%w: %d bytes of early data", ErrTooLarge, len(f.Data))
		}
		dst = binary.BigEndian.AppendUint32(dst, f.Window)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.Target)))
		dst = append(dst, f.Target...)
		dst = append(dst, f.Data...)
	case TypeOpenOK:
		if err := checkRemote([]byte(f.Target)); err != nil {
			return dst, err
		}
		dst = binary.BigEndian.AppendUint32(dst, f.Window)
		dst = append(dst, f.Target...)
	case TypeOpenFail, TypeRst:
		if len(f.Reason) > MaxReason || !utf8.ValidString(f.Reason) {
			return dst, fmt.Errorf("%w: reason", ErrBadField)
		}
		dst = append(dst, byte(f.Code))
		dst = append(dst, f.Reason...)
	case TypeData:
		if len(f.Data) == 0 || len(f.Data) > MaxData {
			return dst, fmt.Errorf("%w: %d bytes of DATA", ErrTooLarge, len(f.Data))
		}
		dst = append(dst, f.Data...)
	case TypeWindow:
		if f.Window == 0 {
			return dst, fmt.Errorf("%w: WINDOW of 0", ErrBadField)
		}
		dst = binary.BigEndian.AppendUint32(dst, f.Window)
	case TypeFin:
	case TypePing, TypePong:
		dst = binary.BigEndian.AppendUint64(dst, f.Time)
	default:
		return dst, fmt.Errorf("%w %#02x", ErrUnknownType, uint8(f.Type))
	}
	return dst, nil
}
