package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"porthole/core/registry"
)

// The cached encoding of /connections is exactly encoding/json's of the
// same snapshot, as connections open, move bytes, learn their program
// and close.
func TestConnCacheMatchesEncodingJSON(t *testing.T) {
	s, _ := newStub(t, Options{})
	defer s.Close()
	reg := s.opts.Backend.Registry()
	same := func(when string) {
		t.Helper()
		// One registry snapshot for both: the totals move with time.
		snap := reg.Snapshot()
		ib, mem := inboundOf(s.opts.Backend.Listen()), uint64(1234)
		var want any
		ref := snapshotJSON{DownloadTotal: snap.Totals.Down, UploadTotal: snap.Totals.Up, Connections: []connJSON{}, Memory: mem}
		for _, in := range snap.Live {
			ref.Connections = append(ref.Connections, connOf(in, ib))
		}
		b, err := json.Marshal(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		var got any
		raw := s.conns.appendSnapshot(nil, snap, ib, mem)
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v in %s", when, err, raw)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\ncached %s\nwant   %s", when, raw, b)
		}
	}
	same("empty")
	var finish []func(error)
	var conns []*registry.Conn
	for i, m := range []registry.Meta{
		{Proto: registry.ProtoConnect, Client: "127.0.0.1:40000", Target: "example.com:443", Route: registry.RouteTunnel},
		{Proto: registry.ProtoHTTP, Client: "[::1]:40001", Target: "10.0.0.1:80", Route: registry.RouteBypass},
		{Proto: registry.ProtoSOCKS5, Client: "127.0.0.1:40002", Target: `we"ird\host:1`, Route: registry.RouteDirect},
		{Proto: registry.ProtoConnect, Client: "127.0.0.1:40003", Target: "example.org:443", Route: registry.RouteTunnel,
			Rule: registry.Rule{Index: 2, Kind: "domain-suffix", Payload: "example.org", Action: "tunnel"}},
	} {
		c, f := reg.Register(m, func(error) {})
		conns, finish = append(conns, c), append(finish, f)
		if i == 0 {
			c.Established("93.184.216.34:443")
		}
	}
	same("opened")
	// The dial picks the exit before Established: seen while the state
	// is still connecting.
	conns[3].SetExit("home")
	same("exit picked")
	conns[0].AddUp(517)
	conns[0].AddDown(4420)
	conns[1].Established("10.0.0.1:80")
	conns[2].SetProcess(&registry.Process{PID: 42, Name: "curl", Path: "/usr/bin/curl", UID: 1000})
	same("changed")
	finish[1](nil)
	same("one closed")
	if len(s.conns.entries) != 3 {
		t.Errorf("%d cached entries, want the 3 live ones", len(s.conns.entries))
	}
	for _, f := range finish {
		f(nil)
	}
	same("all closed")
}
