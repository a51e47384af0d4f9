package main

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestReferenceTunnels runs a refserver and a refclient of each
// multiplexer in this process and goes through them with HTTP CONNECT to
// a real origin: a download, an upload, an echo, and a refused target.
func TestReferenceTunnels(t *testing.T) {
	for _, mux := range []string{muxYamux, muxSmux} {
		t.Run(mux, func(t *testing.T) {
			orig, err := startOrigin()
			if err != nil {
				t.Fatal(err)
			}
			defer orig.Close()
			ctx, cancel := context.WithCancel(context.Background())
			sln := loopbackListener(t)
			cln := loopbackListener(t)
			serverDone := make(chan error, 1)
			clientDone := make(chan error, 1)
			go func() { serverDone <- runRefServer(ctx, sln, mux) }()
			go func() { clientDone <- runRefClient(ctx, cln, mux, "ws://"+sln.Addr().String()+"/") }()
			defer func() {
				cancel()
				if err := <-clientDone; err != nil {
					t.Errorf("refclient: %v", err)
				}
				if err := <-serverDone; err != nil {
					t.Errorf("refserver: %v", err)
				}
			}()

			dial := connectDialer(cln.Addr().String(), orig.addr())
			if _, err := download(dial, 8<<20); err != nil {
				t.Fatalf("download: %v", err)
			}
			if _, err := upload(dial, 8<<20); err != nil {
				t.Fatalf("upload: %v", err)
			}
			if _, err := echoOnce(dial); err != nil {
				t.Fatalf("echo: %v", err)
			}
			if _, _, _, err := connRate(dial, 50, 8); err != nil {
				t.Fatalf("connections: %v", err)
			}

			// A target nobody listens on: the client answers 502.
			ln := loopbackListener(t)
			closed := ln.Addr().String()
			ln.Close()
			if c, err := connectDialer(cln.Addr().String(), closed)(); err == nil {
				c.Close()
				t.Fatal("CONNECT to a closed port succeeded")
			}
		})
	}
}

// TestRefHeaderRoundTrip: the stream header carries the address, and an
// address that does not fit is refused.
func TestRefHeaderRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		if err := writeRefHeader(a, "127.0.0.1:8080"); err != nil {
			t.Errorf("write: %v", err)
		}
	}()
	b.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := readRefHeader(b)
	if err != nil || got != "127.0.0.1:8080" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := writeRefHeader(io.Discard, string(make([]byte, 256))); err == nil {
		t.Fatal("256-byte address accepted")
	}
	if _, err := readRefHeader(eofReader{}); !errors.Is(err, io.EOF) {
		t.Fatalf("empty stream: %v", err)
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
