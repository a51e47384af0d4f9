package registry

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/xid"
)

// Proto is the inbound protocol a client used to ask for a connection.
type Proto uint8

const (
	ProtoHTTP    Proto = iota + 1 // absolute-URI request forwarded by the HTTP front
	ProtoConnect                  // HTTP CONNECT tunnel
	ProtoSOCKS5
	ProtoSOCKS4
)

var protoNames = [...]string{ProtoHTTP: "http", ProtoConnect: "connect", ProtoSOCKS5: "socks5", ProtoSOCKS4: "socks4"}

func (p Proto) String() string { return enumName(protoNames[:], uint8(p), "proto") }

// Route is where the outbound side sends a connection.
type Route uint8

const (
	RouteDirect Route = iota + 1 // direct mode
	RouteTunnel                  // through the exit server
	RouteBypass                  // tunnel mode, but the bypass list sent it direct
	RouteReject                  // a rule refused it: answered in the client's protocol, never dialled
)

var routeNames = [...]string{RouteDirect: "direct", RouteTunnel: "tunnel", RouteBypass: "bypass", RouteReject: "reject"}

func (r Route) String() string { return enumName(routeNames[:], uint8(r), "route") }

// State is where a connection is in its life.
type State uint8

const (
	StateConnecting State = iota + 1 // registered, dialling the target (through a tunnel that answered the client early, bytes may already flow)
	StateOpen                        // target connected, bytes flow
	StateClosed                      // finished; the record only lives in history
)

var stateNames = [...]string{StateConnecting: "connecting", StateOpen: "open", StateClosed: "closed"}

func (s State) String() string { return enumName(stateNames[:], uint8(s), "state") }

// enumName is names[v], or kind(v) for a value without a name.
func enumName(names []string, v uint8, kind string) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", kind, v)
}

// Meta is what the owner knows about a connection when it registers it.
type Meta struct {
	ID     xid.ID // zero: the registry assigns one
	Proto  Proto
	Client string // client address, host:port
	Target string // host:port as the client asked for it
	Route  Route
	// Network is the transport the client asked for: "tcp" ("" means
	// tcp). UDP relaying will add "udp"; rules can match it.
	Network string
	// Rule is the rule that decided the route (zero: none recorded).
	Rule Rule
}

// Info is an immutable copy of a connection record, safe to keep and to hand
// to other goroutines (events, snapshots).
type Info struct {
	Meta
	State       State
	Remote      string // address actually connected to, once open
	Start       time.Time
	Established time.Time // zero until open
	End         time.Time // zero until closed
	Up, Down    int64     // bytes client→target and target→client
	Err         error     // close reason; nil for a clean close
	// Process is the program that opened the connection: nil while the
	// lookup has not answered (or none was made), then set once. Shared
	// and immutable, see Process.
	Process *Process
	// Exit is the name of the exit that carried the connection ("" for
	// direct ones, and before the dial).
	Exit string
}

// Conn is the live record of one proxied connection.
//
// Concurrency: AddUp and AddDown are lock-free and meant for the relay's hot
// path. Established, Abort and the finish func returned by Register are safe
// from any goroutine and idempotent. Everything else about the record is
// guarded by the registry's lock.
type Conn struct {
	reg   *Registry
	meta  Meta
	start time.Time
	abort func(error) // owner's hook: must not block, must not call the registry

	up, down atomic.Int64

	establishOnce sync.Once
	processOnce   sync.Once
	finishOnce    sync.Once

	// Guarded by reg.mu.
	aborted     bool
	abortReason error
	state       State
	remote      string
	established time.Time
	end         time.Time
	err         error
	process     *Process
	exit        string

	// Only touched by the stats ticker, under reg.mu.
	seenUp, seenDown int64
	lastActive       time.Time
}

// ID is the connection's id, the same one logs and the tunnel use.
func (c *Conn) ID() xid.ID { return c.meta.ID }

// Meta returns what the connection was registered with.
func (c *Conn) Meta() Meta { return c.meta }

// AddUp counts n bytes delivered from the client to the target.
func (c *Conn) AddUp(n int64) { c.up.Add(n) }

// AddDown counts n bytes delivered from the target to the client.
func (c *Conn) AddDown(n int64) { c.down.Add(n) }

// Up and Down are the byte counts so far.
func (c *Conn) Up() int64   { return c.up.Load() }
func (c *Conn) Down() int64 { return c.down.Load() }

// Established marks the target as connected (remote is the address actually
// dialled) and emits an Established event. Only the first call counts; a call
// after the connection finished is ignored.
func (c *Conn) Established(remote string) {
	c.establishOnce.Do(func() {
		r := c.reg
		r.mu.Lock()
		defer r.mu.Unlock()
		if c.state != StateConnecting {
			return
		}
		c.state = StateOpen
		c.remote = remote
		c.established = r.now()
		c.lastActive = c.established
		r.publish(Event{Kind: KindEstablished, Conn: c.infoLocked()})
	})
}

// SetExit records the exit that carries the connection. It publishes no
// event: the owner calls it right after the dial, before Established,
// whose event carries it.
func (c *Conn) SetExit(name string) {
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	c.exit = name
}

// SetProcess records the program that opened the connection and emits a
// Process event carrying the updated record. Only the first call counts.
// It may come after the connection finished (the lookup runs beside the
// connection and a short one can end first): then the closed record in
// history is updated and the event carries it with State closed.
func (c *Conn) SetProcess(p *Process) {
	if p == nil {
		return
	}
	c.processOnce.Do(func() {
		r := c.reg
		r.mu.Lock()
		defer r.mu.Unlock()
		c.process = p
		info := c.infoLocked()
		if c.state == StateClosed {
			r.history.setProcess(c.meta.ID, c.end, p)
		}
		r.publish(Event{Kind: KindProcess, Conn: info})
	})
}

// Abort asks the owner to end the connection: it records reason as the close
// reason (the first reason wins) and calls the owner's abort hook, which
// closes the sockets. The Closed event follows when the owner has finished,
// so it carries the final byte counts. Abort after finish does nothing.
func (c *Conn) Abort(reason error) {
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	c.abortLocked(reason)
}

// abortLocked is Abort with reg.mu held. Checking "not finished", recording
// the reason and calling the hook happen in one critical section: a hook
// called after finish would hit what the owner reuses (the inbound hook
// cancels the whole client connection, shared by keep-alive requests), and a
// reason recorded after finish read it would be lost. This is why the hook
// must not block and must not call the registry.
func (c *Conn) abortLocked(reason error) {
	if c.aborted || c.state == StateClosed {
		return
	}
	c.aborted, c.abortReason = true, reason
	if c.abort != nil {
		c.abort(reason)
	}
}

// finish moves the record to closed: out of the live map and into history in
// one critical section, with exactly one Closed event.
func (c *Conn) finish(err error) {
	c.finishOnce.Do(func() {
		r := c.reg
		r.mu.Lock()
		defer r.mu.Unlock()
		if c.aborted {
			err = c.abortReason
		}
		// Check-and-delete: a record registered later with the same
		// caller-given ID must stay live.
		if r.live[c.meta.ID] == c {
			delete(r.live, c.meta.ID)
		}
		c.state = StateClosed
		c.end = r.now()
		c.err = err
		info := c.infoLocked()
		r.closedUp += info.Up
		r.closedDown += info.Down
		r.history.push(info)
		r.publish(Event{Kind: KindClosed, Conn: info})
	})
}

// infoLocked copies the record; the caller holds reg.mu.
func (c *Conn) infoLocked() Info {
	return Info{
		Meta:        c.meta,
		State:       c.state,
		Remote:      c.remote,
		Start:       c.start,
		Established: c.established,
		End:         c.end,
		Up:          c.up.Load(),
		Down:        c.down.Load(),
		Err:         c.err,
		Process:     c.process,
		Exit:        c.exit,
	}
}
