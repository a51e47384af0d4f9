package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/hashicorp/yamux"
	"github.com/xtaci/smux"
)

// The reference tunnels: hashicorp/yamux and xtaci/smux, each with its
// default configuration, over one WebSocket (wsConn), run by the bench
// binary itself as two processes (refclient, refserver) so that their
// memory and CPU are measured like Porthole's.
//
// A stream starts with a header from the client: one length byte and the
// target address ("host:port"). The server dials the target and answers
// one status byte (refOK or refFailed); then the stream carries the
// connection's bytes both ways. So a CONNECT through a reference costs a
// round trip to the server, like Porthole's CONNECT.
const (
	refOK     byte = 0
	refFailed byte = 1
)

// Multiplexer names, as given to -mux.
const (
	muxYamux = "yamux"
	muxSmux  = "smux"
)

// muxSession is what the reference tunnels need of yamux and smux.
type muxSession interface {
	open() (net.Conn, error)
	accept() (net.Conn, error)
	Close() error
}

// newMuxSession starts a session of the named multiplexer, with its
// defaults, over conn.
func newMuxSession(name string, conn net.Conn, client bool) (muxSession, error) {
	switch name {
	case muxYamux:
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = os.Stderr // the default too; said here because it is not a tuning
		var s *yamux.Session
		var err error
		if client {
			s, err = yamux.Client(conn, cfg)
		} else {
			s, err = yamux.Server(conn, cfg)
		}
		if err != nil {
			return nil, fmt.Errorf("yamux: %w", err)
		}
		return yamuxSession{s}, nil
	case muxSmux:
		var s *smux.Session
		var err error
		if client {
			s, err = smux.Client(conn, smux.DefaultConfig())
		} else {
			s, err = smux.Server(conn, smux.DefaultConfig())
		}
		if err != nil {
			return nil, fmt.Errorf("smux: %w", err)
		}
		return smuxSession{s}, nil
	}
	return nil, fmt.Errorf("unknown multiplexer %q (want %s or %s)", name, muxYamux, muxSmux)
}

type yamuxSession struct{ s *yamux.Session }

func (y yamuxSession) open() (net.Conn, error) {
	st, err := y.s.OpenStream()
	if err != nil {
		return nil, err
	}
	return yamuxStream{st}, nil
}

func (y yamuxSession) accept() (net.Conn, error) {
	st, err := y.s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return yamuxStream{st}, nil
}

func (y yamuxSession) Close() error { return y.s.Close() }

// yamuxStream gives a yamux stream CloseWrite: yamux's Close is a
// half-close (it sends FIN and keeps reading until the peer's FIN).
type yamuxStream struct{ *yamux.Stream }

func (s yamuxStream) CloseWrite() error { return s.Stream.Close() }

type smuxSession struct{ s *smux.Session }

func (m smuxSession) open() (net.Conn, error)   { return m.s.OpenStream() }
func (m smuxSession) accept() (net.Conn, error) { return m.s.AcceptStream() }
func (m smuxSession) Close() error              { return m.s.Close() }

// writeRefHeader sends the target address at the start of a stream.
func writeRefHeader(w io.Writer, target string) error {
	if len(target) == 0 || len(target) > 255 {
		return fmt.Errorf("target %q: length must be 1..255", target)
	}
	_, err := w.Write(append([]byte{byte(len(target))}, target...))
	return err
}

// readRefHeader reads the target address at the start of a stream.
func readRefHeader(r io.Reader) (string, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	b := make([]byte, n[0])
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// closeWriter is a connection that can end its sending side alone: TCP,
// smux and (wrapped) yamux streams.
type closeWriter interface{ CloseWrite() error }

// splice copies both ways between a and b until both directions ended,
// passing each end on as a half-close, then closes both. a's first bytes
// come from ar (a buffered reader of a, or a itself).
func splice(a net.Conn, ar io.Reader, b net.Conn) {
	var wg sync.WaitGroup
	var once sync.Once
	kill := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	one := func(dst net.Conn, src io.Reader) {
		_, err := io.Copy(dst, src)
		cw, ok := dst.(closeWriter)
		if err != nil || !ok || cw.CloseWrite() != nil {
			kill() // a failure ends both directions
		}
	}
	wg.Go(func() { one(b, ar) })
	wg.Go(func() { one(a, b) })
	wg.Wait()
	kill()
}

// errRefFailed is the server's refusal of a stream's target.
var errRefFailed = errors.New("reference server could not reach the target")
