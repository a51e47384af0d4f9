package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/xid"
)

// minInterval is the fastest /connections stream: a dashboard asking for
// faster gets this, so that it cannot make the proxy spend its CPU on
// snapshots.
const minInterval = 100 * time.Millisecond

// snapshotBytes appends the JSON of /connections to buf, through the
// cache of each connection's unchanging part (conncache.go).
func (s *Server) snapshotBytes(buf []byte) []byte {
	snap := s.opts.Backend.Registry().Snapshot()
	return s.conns.appendSnapshot(buf, snap, inboundOf(s.opts.Backend.Listen()), s.mem.inUse())
}

// snapshot is /connections as a value: the live connections, oldest
// first, with the totals. snapshotBytes is what is sent; this is its
// reference (the tests compare them).
func (s *Server) snapshot() snapshotJSON {
	snap := s.opts.Backend.Registry().Snapshot()
	ib := inboundOf(s.opts.Backend.Listen())
	out := snapshotJSON{
		DownloadTotal: snap.Totals.Down,
		UploadTotal:   snap.Totals.Up,
		Connections:   make([]connJSON, 0, len(snap.Live)),
		Memory:        s.mem.inUse(),
	}
	for _, in := range snap.Live {
		out.Connections = append(out.Connections, connOf(in, ib))
	}
	return out
}

// getConnections answers the snapshot, or streams one every ?interval=
// milliseconds (default 1000) over a WebSocket.
func (s *Server) getConnections(w http.ResponseWriter, r *http.Request) {
	interval := time.Second
	if v := r.URL.Query().Get("interval"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			writeError(w, http.StatusBadRequest, errBadRequest)
			return
		}
		interval = max(time.Duration(ms)*time.Millisecond, minInterval)
	}
	if !isUpgrade(r) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(s.snapshotBytes(nil), '\n')) // a client gone: nothing to tell it
		return
	}
	s.stream(w, r, func(ctx context.Context, send sender) error {
		var buf rawJSON // one buffer for the stream's life
		return ticking(ctx, send, interval, func() any {
			buf = s.snapshotBytes(buf[:0])
			return buf
		})
	})
}

// closeAll closes every live connection; the registry records "closed by
// user".
func (s *Server) closeAll(w http.ResponseWriter, r *http.Request) {
	s.opts.Backend.Registry().CloseAll()
	w.WriteHeader(http.StatusNoContent)
}

// closeOne closes one connection. An unknown or finished id is no error,
// as in mihomo.
func (s *Server) closeOne(w http.ResponseWriter, r *http.Request) {
	if id, err := xid.FromString(chi.URLParam(r, "id")); err == nil {
		s.opts.Backend.Registry().CloseConn(id)
	}
	w.WriteHeader(http.StatusNoContent)
}
