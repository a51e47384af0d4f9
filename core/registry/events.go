package registry

import (
	"fmt"
	"time"

	"github.com/rs/xid"
)

// Kind says what an Event reports.
type Kind uint8

const (
	KindOpened      Kind = iota + 1 // registered; Conn.State is connecting
	KindEstablished                 // target connected; Conn.State is open
	KindClosed                      // finished; Conn has final counts and reason
	KindStats                       // periodic byte counts; Stats is set
	// KindProcess: the program that opened Conn is now known (or known to
	// be unknown): Conn.Process is set. Conn.State may be closed already.
	KindProcess
)

var kindNames = [...]string{
	KindOpened: "opened", KindEstablished: "established", KindClosed: "closed",
	KindStats: "stats", KindProcess: "process",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is one change in the registry. Lifecycle events carry a copy of the
// record; a Stats event carries the counters that moved since the last tick.
// Events are values: a subscriber may keep them.
type Event struct {
	Seq   uint64 // increases by one per event, across all kinds
	Kind  Kind
	Conn  Info   // for Opened, Established, Closed, Process
	Stats *Stats // for Stats
}

// Stats is the periodic batch of byte counts. There is no event per read or
// write: the hot path only bumps atomic counters and the ticker reports them.
type Stats struct {
	At     time.Time
	Deltas []Delta // only the live connections whose counters changed
	Totals Totals
}

// Delta is one connection's counters at a tick.
type Delta struct {
	ID       xid.ID
	Up, Down int64 // totals so far
	DUp      int64 // since the previous tick
	DDown    int64
}

// Totals are the registry-wide figures the tray shows.
type Totals struct {
	Active   int     // live connections
	Opened   uint64  // connections registered since the registry started
	Up, Down int64   // bytes, closed and live connections together
	UpRate   float64 // bytes per second over the last tick
	DownRate float64
}
