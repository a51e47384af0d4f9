package ui

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"porthole/core/registry"
)

// benchModel is a model of a busy proxy, built through a real registry:
// 1,000 live connections and 10,000 closed ones in history.
func benchModel(b *testing.B) *connModel {
	b.Helper()
	const live, closed = 1000, 10000
	reg := registry.New(registry.Options{History: closed, StatsInterval: time.Hour})
	b.Cleanup(func() { _ = reg.Close() })
	routes := []registry.Route{registry.RouteDirect, registry.RouteTunnel, registry.RouteBypass}
	protos := []registry.Proto{registry.ProtoConnect, registry.ProtoHTTP, registry.ProtoSOCKS5}
	refused := errors.New("dial tcp: connection refused")
	for i := range live + closed {
		c, finish := reg.Register(registry.Meta{
			Proto: protos[i%3], Route: routes[(i/3)%3],
			Client: "127.0.0.1:40000", Target: fmt.Sprintf("host%05d.example.com:%d", (i*7919)%20000, 443+i%3),
		}, nil)
		c.AddUp(int64(i * 37 % 100000))
		c.AddDown(int64(i * 101 % 10000000))
		if i < closed {
			var err error
			if i%10 == 0 {
				err = refused
			}
			finish(err)
		}
	}
	m := newConnModel(closed)
	m.reset(reg.Snapshot())
	if len(m.live) != live || len(m.closed) != closed {
		b.Fatalf("model has %d live and %d closed", len(m.live), len(m.closed))
	}
	return m
}

// BenchmarkInspectorSort reports the time to sort both tabs (1,000 +
// 10,000 rows) by a column, as a header click does.
func BenchmarkInspectorSort(b *testing.B) {
	base := benchModel(b).base(time.Now())
	for _, col := range []column{colHost, colSpeed, colDuration, colError} {
		b.Run(columns[col].title, func(b *testing.B) {
			s := sortSpec{col: col}
			for b.Loop() {
				buildRows(base.live, connFilter{}, s, base.at)
				buildRows(base.closed, connFilter{}, s, base.at)
			}
		})
	}
}

// BenchmarkInspectorFilter reports the time to filter and sort both tabs.
func BenchmarkInspectorFilter(b *testing.B) {
	base := benchModel(b).base(time.Now())
	for _, text := range []string{"host01", "route:tunnel", "refused", "proto:socks5 -port:443"} {
		b.Run(text, func(b *testing.B) {
			f := parseFilter(text)
			s := defaultQuery().sort[tabActive]
			for b.Loop() {
				buildRows(base.live, f, s, base.at)
				buildRows(base.closed, f, s, base.at)
			}
		})
	}
}

// BenchmarkInspectorView reports what the bridge does for one redraw after
// a stats tick: apply a tick moving every live connection, copy the rows
// out and build both tabs.
func BenchmarkInspectorView(b *testing.B) {
	m := benchModel(b)
	st := &loopState{model: m}
	deltas := make([]registry.Delta, 0, len(m.live))
	for id, r := range m.live {
		deltas = append(deltas, registry.Delta{ID: id, Up: r.Up, Down: r.Down, DUp: 1, DDown: 1})
	}
	at := time.Now()
	br := newBridge(nil, 0, nil, nil)
	for b.Loop() {
		at = at.Add(time.Second)
		m.applyStats(&registry.Stats{At: at, Deltas: deltas})
		st.stale = true
		br.buildView(1, st)
	}
}
