package main

import (
	"context"
	"net"
)

// acceptUntil hands every connection ln accepts to serve until ctx ends,
// then closes ln and returns nil; an Accept error before that is returned
// (ln closed with it). serve must not block: it starts the connection's
// goroutine.
func acceptUntil(ctx context.Context, ln net.Listener, serve func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			ln.Close()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		serve(c)
	}
}
