package api

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"

	"porthole/core/registry"
)

// isUpgrade reports a WebSocket upgrade request.
func isUpgrade(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// closedConnections is /porthole/connections/closed: the registry's
// history, newest first, each with the id and metadata /connections gave
// it, its end and its close reason.
func (s *Server) closedConnections(w http.ResponseWriter, r *http.Request) {
	snap := s.opts.Backend.Registry().Snapshot()
	ib := inboundOf(s.opts.Backend.Listen())
	out := make([]closedJSON, 0, len(snap.Closed))
	for _, in := range slices.Backward(snap.Closed) {
		out = append(out, closedOf(in, ib))
	}
	writeJSON(w, http.StatusOK, struct {
		Connections []closedJSON `json:"connections"`
	}{out})
}

// eventJSON is one message of /porthole/events.
type eventJSON struct {
	Type string `json:"type"` // snapshot, opened, established, process, closed, stats, error
	Seq  uint64 `json:"seq"`
	// snapshot
	Live   []closedJSON `json:"live,omitzero"`
	Closed []closedJSON `json:"closed,omitzero"`
	// opened, established, process, closed
	Connection *closedJSON `json:"connection,omitempty"`
	// stats, snapshot
	Stats  *statsJSON  `json:"stats,omitempty"`
	Totals *totalsJSON `json:"totals,omitempty"`
	// error: why the stream ends (the reader fell behind: connect again
	// for a fresh snapshot)
	Message string `json:"message,omitempty"`
}

type statsJSON struct {
	At     time.Time   `json:"at"`
	Deltas []deltaJSON `json:"deltas"`
}

type deltaJSON struct {
	ID        string `json:"id"`
	Upload    int64  `json:"upload"`
	Download  int64  `json:"download"`
	DUpload   int64  `json:"uploadDelta"`
	DDownload int64  `json:"downloadDelta"`
}

type totalsJSON struct {
	Active       int     `json:"active"`
	Opened       uint64  `json:"opened"`
	Upload       int64   `json:"upload"`
	Download     int64   `json:"download"`
	UploadRate   float64 `json:"uploadRate"`
	DownloadRate float64 `json:"downloadRate"`
}

func totalsOf(t registry.Totals) *totalsJSON {
	return &totalsJSON{Active: t.Active, Opened: t.Opened, Upload: t.Up, Download: t.Down,
		UploadRate: t.UpRate, DownloadRate: t.DownRate}
}

// events is the WebSocket /porthole/events: the registry's snapshot, then
// every event after it with its sequence number, none lost and none
// twice (Registry.Subscribe over the wire). A reader that falls behind
// gets an "error" message and the stream ends; it connects again.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r) {
		writeError(w, http.StatusBadRequest, "/porthole/events is a WebSocket")
		return
	}
	reg := s.opts.Backend.Registry()
	s.stream(w, r, func(ctx context.Context, send sender) error {
		snap, sub := reg.Subscribe()
		defer sub.Close()
		ib := inboundOf(s.opts.Backend.Listen())
		first := eventJSON{Type: "snapshot", Seq: snap.Seq, Totals: totalsOf(snap.Totals),
			Live: make([]closedJSON, 0, len(snap.Live)), Closed: make([]closedJSON, 0, len(snap.Closed))}
		for _, in := range snap.Live {
			first.Live = append(first.Live, closedOf(in, ib))
		}
		for _, in := range snap.Closed {
			first.Closed = append(first.Closed, closedOf(in, ib))
		}
		if err := send(first); err != nil {
			return err
		}
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case batch, ok := <-sub.C:
				if !ok {
					err := sub.Err()
					if err == nil {
						return nil
					}
					if serr := send(eventJSON{Type: "error", Message: err.Error()}); serr != nil {
						return serr
					}
					return err
				}
				for _, ev := range batch {
					if err := send(eventOf(ev, ib)); err != nil {
						return err
					}
				}
			}
		}
	})
}

func eventOf(ev registry.Event, ib inbound) eventJSON {
	out := eventJSON{Type: ev.Kind.String(), Seq: ev.Seq}
	if ev.Kind == registry.KindStats && ev.Stats != nil {
		st := &statsJSON{At: ev.Stats.At, Deltas: make([]deltaJSON, 0, len(ev.Stats.Deltas))}
		for _, d := range ev.Stats.Deltas {
			st.Deltas = append(st.Deltas, deltaJSON{ID: d.ID.String(), Upload: d.Up, Download: d.Down,
				DUpload: d.DUp, DDownload: d.DDown})
		}
		out.Stats, out.Totals = st, totalsOf(ev.Stats.Totals)
		return out
	}
	c := closedOf(ev.Conn, ib)
	out.Connection = &c
	return out
}
