package main

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// refSetup is a running reference tunnel: a refserver process, optionally
// a delay relay in front of it, and a refclient process whose CONNECT
// proxy is client.addr.
type refSetup struct {
	mux    string
	server *proc
	relay  *delayRelay
	client *proc
}

// startRef starts a reference tunnel of the named multiplexer; with
// delay > 0 the client reaches the server through a relay that delays
// each direction by delay.
func startRef(mux string, delay time.Duration) (*refSetup, error) {
	r := &refSetup{mux: mux}
	ok := false
	defer func() {
		if !ok {
			r.Stop()
		}
	}()
	var err error
	if r.server, err = startSelf(mux+"-server", refServerReady, "refserver", "-mux", mux); err != nil {
		return nil, err
	}
	saddr := r.server.addr
	if delay > 0 {
		if r.relay, err = startDelayRelay(saddr, delay); err != nil {
			return nil, err
		}
		saddr = r.relay.addr()
	}
	if r.client, err = startSelf(mux+"-client", refClientReady, "refclient", "-mux", mux, "-server", "ws://"+saddr+"/"); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

// Stop stops the client, the relay and the server, and says how each
// process ended.
func (r *refSetup) Stop() []string {
	var exits []string
	if r.client != nil {
		exits = append(exits, r.client.name+": "+r.client.Stop())
		r.client = nil
	}
	if r.relay != nil {
		r.relay.drain(time.Second)
		if err := r.relay.Close(); err != nil && !errors.Is(err, errRelayClosed) {
			fmt.Fprintln(os.Stderr, "bench: relay:", err)
		}
		r.relay = nil
	}
	if r.server != nil {
		exits = append(exits, r.server.name+": "+r.server.Stop())
		r.server = nil
	}
	return exits
}
