package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/rs/xid"

	"porthole/core/registry"
)

// connCache keeps each live connection's JSON for /connections, but for
// its byte counts: what a dashboard reads every second is mostly the same
// as a second ago (the id, the metadata, the start, the chains), and
// encoding 10,000 connections with reflection each second would cost the
// proxy a tenth of a core. An entry is made again when what it shows
// changes: the record's state (the remote address comes with open), its
// program (known once), its exit (set by the dial, which may be seen
// before the state moves on), the proxy's address. The rest of what it
// shows (the route, the rule) is fixed at registration.
//
// Concurrency: appendSnapshot is safe from any goroutine; one runs at a
// time.
type connCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[xid.ID]*cachedConn
}

type cachedConn struct {
	gen     uint64 // the last snapshot that listed it
	state   registry.State
	process *registry.Process
	exit    string
	ib      inbound
	// prefix is `{"id":…,"metadata":{…},"upload":`, middle
	// `,"download":`, suffix `,"start":…,"chains":…,"rule":…,"rulePayload":…}`.
	prefix, suffix []byte
	whole          bool // the cut failed (it cannot): encode whole each time
}

func newConnCache() *connCache { return &connCache{entries: make(map[xid.ID]*cachedConn)} }

// appendSnapshot appends the JSON of /connections for snap to buf.
func (cc *connCache) appendSnapshot(buf []byte, snap registry.Snapshot, ib inbound, memory uint64) []byte {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	buf = append(buf, `{"downloadTotal":`...)
	buf = strconv.AppendInt(buf, snap.Totals.Down, 10)
	buf = append(buf, `,"uploadTotal":`...)
	buf = strconv.AppendInt(buf, snap.Totals.Up, 10)
	buf = append(buf, `,"connections":[`...)
	for i, in := range snap.Live {
		if i > 0 {
			buf = append(buf, ',')
		}
		e := cc.entries[in.ID]
		if e == nil || e.state != in.State || e.process != in.Process || e.exit != in.Exit || e.ib != ib {
			e = newCachedConn(in, ib)
			cc.entries[in.ID] = e
		}
		e.gen = cc.gen
		if e.whole {
			b, _ := json.Marshal(connOf(in, ib)) // our own type: encodes
			buf = append(buf, b...)
			continue
		}
		buf = append(buf, e.prefix...)
		buf = strconv.AppendInt(buf, in.Up, 10)
		buf = append(buf, `,"download":`...)
		buf = strconv.AppendInt(buf, in.Down, 10)
		buf = append(buf, e.suffix...)
	}
	buf = append(buf, `],"memory":`...)
	buf = strconv.AppendUint(buf, memory, 10)
	buf = append(buf, '}')
	for id, e := range cc.entries {
		if e.gen != cc.gen {
			delete(cc.entries, id) // no longer live
		}
	}
	return buf
}

// newCachedConn encodes a connection with encoding/json once, and cuts it
// around the counts, so the cached form is exactly what connOf encodes.
func newCachedConn(in registry.Info, ib inbound) *cachedConn {
	e := &cachedConn{state: in.State, process: in.Process, exit: in.Exit, ib: ib}
	c := connOf(in, ib)
	c.Upload, c.Download = 0, 0
	b, err := json.Marshal(c)
	if err != nil { // our own type: cannot happen
		e.whole = true
		return e
	}
	// Inside a JSON string every quote is escaped, so `,"upload"` (a
	// quote after a comma) is found only where the field itself is.
	const counts = `,"upload":0,"download":0`
	i := bytes.Index(b, []byte(counts))
	if i < 0 { // cannot happen: connJSON's field order
		e.whole = true
		return e
	}
	e.prefix = append(append([]byte(nil), b[:i]...), `,"upload":`...)
	e.suffix = append([]byte(nil), b[i+len(counts):]...)
	return e
}
