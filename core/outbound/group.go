package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"porthole/core/tunnel"
)

// Defaults of a Group.
const (
	// DefaultGrace is how long a new connection waits for an exit that is
	// reconnecting when no exit is usable, before it fails.
	DefaultGrace = time.Second
	// defaultRefresh is how often latencies are read again for the
	// fastest policy and for watchers (state changes wake it at once).
	defaultRefresh = time.Second
)

// ExitConfig is one exit of a Group.
type ExitConfig struct {
	Name string
	Kind Kind
	// Tunnel configures a KindPorthole exit (URL, token, TLS, session).
	Tunnel tunnel.ClientConfig
	// Upstream configures a KindHTTP or KindSOCKS5 exit; its Name and
	// Kind are set from the exit's.
	Upstream UpstreamConfig
}

// GroupConfig configures a Group.
type GroupConfig struct {
	Exits    []ExitConfig // at least one, names unique
	Policy   Policy       // "": failover
	Selected string       // the manual pick; "": the first exit
	// DialTimeout bounds one dial through an exit (the wait for a first
	// session included); default DefaultDialTimeout.
	DialTimeout time.Duration
	Grace       time.Duration // default DefaultGrace
	Refresh     time.Duration // default 1 s
	Logger      *slog.Logger
}

// member is one exit as the group drives it; each kind implements it.
type member interface {
	Dialer
	start() error
	stop() error
	status() ExitStatus
	changed() <-chan struct{} // closed at the next change of state
	test(ctx context.Context) (time.Duration, error)
	report(err error) // a dial's exit failure (no-op where the exit sees it itself)
}

// GroupState is the exits as a watcher sees them.
type GroupState struct {
	Policy   Policy
	Selected string // the manual pick
	Active   string // where new connections go now ("" when none is usable)
	Exits    []ExitStatus
}

// Group is the tunnel route's Dialer over several exits: it picks one
// per connection by policy and health, honours DialInfo.Exit (a rule
// naming an exit), and fails fast, naming the exit and why, when none is
// usable. Its connections implement ExitNamer.
//
// Concurrency: DialContext, State, Subscribe, Select and Test are safe
// from any goroutine. Start, Stop and Close are serialised and
// idempotent; Stop returns when every exit's goroutines and the group's
// own have ended, Close also ends every subscription. A stopped group can
// be started again; a closed one cannot.
type Group struct {
	log     *slog.Logger
	members []member
	names   map[string]int
	policy  Policy
	grace   time.Duration
	refresh time.Duration
	timeout time.Duration

	life sync.Mutex // held through Start, Stop and Close

	mu       sync.Mutex
	running  bool
	closed   bool
	selected int
	fastest  int // the fastest policy's current pick; -1 none
	// challenger is an exit clearly faster than the fastest pick since
	// challengerSince (-1 none): it takes over once that has lasted
	// fastestHold (group_policy.go).
	challenger      int
	challengerSince time.Time
	changes         chan struct{} // closed and replaced when a state changes
	last            GroupState    // what watchers were last told
	watchers        map[*ExitWatch]struct{}
	cancel          context.CancelFunc
	wg              sync.WaitGroup
}

// NewGroup checks cfg and returns a stopped group.
func NewGroup(cfg GroupConfig) (*Group, error) {
	if len(cfg.Exits) == 0 {
		return nil, ErrNoTunnel
	}
	policy, err := ParsePolicy(string(cfg.Policy))
	if err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = defaultRefresh
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Group{
		log:        cfg.Logger,
		names:      make(map[string]int, len(cfg.Exits)),
		policy:     policy,
		grace:      cfg.Grace,
		refresh:    cfg.Refresh,
		timeout:    cfg.DialTimeout,
		fastest:    -1,
		challenger: -1,
		changes:    make(chan struct{}),
		watchers:   make(map[*ExitWatch]struct{}),
	}
	for i, ec := range cfg.Exits {
		if ec.Name == "" {
			return nil, fmt.Errorf("exit %d: no name", i+1)
		}
		if _, dup := g.names[ec.Name]; dup {
			return nil, fmt.Errorf("exit %q: the name is taken", ec.Name)
		}
		m, err := newMember(ec, cfg)
		if err != nil {
			return nil, fmt.Errorf("exit %q: %w", ec.Name, err)
		}
		g.names[ec.Name] = i
		g.members = append(g.members, m)
	}
	if cfg.Selected != "" {
		i, ok := g.names[cfg.Selected]
		if !ok {
			return nil, fmt.Errorf("selected exit %q: %w", cfg.Selected, ErrUnknownExit)
		}
		g.selected = i
	}
	g.last = g.stateLocked(g.statuses())
	return g, nil
}

func newMember(ec ExitConfig, cfg GroupConfig) (member, error) {
	kind, err := ParseKind(string(ec.Kind))
	if err != nil {
		return nil, err
	}
	if kind == KindPorthole {
		tc := ec.Tunnel
		if tc.Logger == nil {
			tc.Logger = cfg.Logger.With("exit_name", ec.Name)
		}
		return newPortholeExit(ec.Name, tc, cfg.DialTimeout)
	}
	uc := ec.Upstream
	uc.Name, uc.Kind = ec.Name, kind
	if uc.Timeout <= 0 {
		uc.Timeout = cfg.DialTimeout
	}
	if uc.Logger == nil {
		uc.Logger = cfg.Logger
	}
	return newUpstream(uc)
}

// Start starts every exit (sessions connect, probes begin) and the
// group's watchers.
func (g *Group) Start() error {
	g.life.Lock()
	defer g.life.Unlock()
	g.mu.Lock()
	running, closed := g.running, g.closed
	g.mu.Unlock()
	switch {
	case closed:
		return ErrTunnelStopped
	case running:
		return nil
	}
	for i, m := range g.members {
		if err := m.start(); err != nil {
			for _, s := range g.members[:i] {
				_ = s.stop() // undoing a failed start; the start's error is the one to tell
			}
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.mu.Lock()
	g.running, g.cancel = true, cancel
	g.mu.Unlock()
	for _, m := range g.members {
		g.wg.Add(1)
		go g.watch(ctx, m)
	}
	g.update()
	return nil
}

// Stop stops every exit: a porthole exit's streams end with "exit lost"
// (the engine stops the inbound side first, so its connections end as
// "proxy stopped").
func (g *Group) Stop() error {
	g.life.Lock()
	defer g.life.Unlock()
	return g.stopLocked()
}

func (g *Group) stopLocked() error {
	g.mu.Lock()
	running, cancel := g.running, g.cancel
	g.running, g.cancel = false, nil
	g.mu.Unlock()
	if !running {
		return nil
	}
	cancel()
	g.wg.Wait()
	var err error
	for _, m := range g.members {
		err = errors.Join(err, m.stop())
	}
	g.update()
	return err
}

// Close stops the group and ends every subscription; it is idempotent.
func (g *Group) Close() error {
	g.life.Lock()
	defer g.life.Unlock()
	err := g.stopLocked()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		for w := range g.watchers {
			g.endLocked(w, ErrGroupClosed)
		}
	}
	return err
}

// watch re-reads the exits when m's state changes, and every refresh for
// the latencies, until the group stops.
func (g *Group) watch(ctx context.Context, m member) {
	defer g.wg.Done()
	t := time.NewTicker(g.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.changed():
		case <-t.C:
		}
		g.update()
	}
}

func (g *Group) statuses() []ExitStatus {
	sts := make([]ExitStatus, len(g.members))
	for i, m := range g.members {
		sts[i] = m.status()
	}
	return sts
}

// update reads the exits, lets the policy decide, and tells watchers and
// waiting dials if anything they see changed.
func (g *Group) update() {
	sts := g.statuses()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reconsiderLocked(sts, time.Now()) // moves the fastest pick if it must
	st := g.stateLocked(sts)
	if sameState(st, g.last) {
		return
	}
	if st.Active != g.last.Active {
		switch {
		case st.Active == "" && g.running && len(g.members) > 1:
			// With one exit its own warning (the tunnel's, the probe's)
			// says it all.
			g.log.Warn("no exit usable", "exit", g.last.Active)
		case g.last.Active != "" && st.Active != "":
			g.log.Info("exit in use changed", "from", g.last.Active, "to", st.Active)
		}
	}
	g.last = st
	close(g.changes)
	g.changes = make(chan struct{})
	g.publishLocked(st)
}

// stateLocked is the group's state from the exits' statuses; the caller
// holds mu.
func (g *Group) stateLocked(sts []ExitStatus) GroupState {
	st := GroupState{Policy: g.policy, Selected: sts[g.selected].Name, Exits: sts}
	active, _, _ := g.choose(sts, -1, nil)
	for i := range sts {
		sts[i].Selected = i == g.selected
		sts[i].Active = i == active
	}
	if active >= 0 {
		st.Active = sts[active].Name
	}
	return st
}

// sameState reports whether a watcher would see no difference: states,
// reasons, the pick, and latencies as they are shown (sameLatency). An exit keeps its
// error value until its next attempt, which also moves Retry, so the same
// value (errors.Is, nil with nil) means the same reason.
func sameState(a, b GroupState) bool {
	if a.Active != b.Active || a.Selected != b.Selected || a.Policy != b.Policy || len(a.Exits) != len(b.Exits) {
		return false
	}
	for i := range a.Exits {
		x, y := a.Exits[i], b.Exits[i]
		if x.State != y.State || x.Retry != y.Retry || !x.Since.Equal(y.Since) ||
			!sameLatency(x.Latency, y.Latency) ||
			!errors.Is(x.Err, y.Err) {
			return false
		}
	}
	return true
}

// sameLatency reports whether two latencies read alike (roundLatency's
// precision: 0.1 ms below a millisecond, 1 ms above), so that jitter does
// not wake watchers; an unknown latency (0) never reads like a measured
// one, however small (a LAN exit's 0.3 ms after "Test now").
func sameLatency(a, b time.Duration) bool {
	if (a > 0) != (b > 0) {
		return false
	}
	return shownLatency(a) == shownLatency(b)
}

func shownLatency(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// State is the exits now, with the policy's pick.
func (g *Group) State() GroupState {
	sts := g.statuses()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stateLocked(sts)
}

// Names are the exits' names in list order.
func (g *Group) Names() []string {
	out := make([]string, len(g.members))
	for name, i := range g.names {
		out[i] = name
	}
	return out
}

// Select makes name the manual pick (used by the manual policy).
func (g *Group) Select(name string) error {
	i, ok := g.names[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownExit, name)
	}
	g.mu.Lock()
	g.selected = i
	g.mu.Unlock()
	g.update()
	return nil
}

// Test measures an exit's latency now: an upstream proxy is probed, a
// porthole exit PINGs its session and waits for the PONG.
func (g *Group) Test(ctx context.Context, name string) (time.Duration, error) {
	i, ok := g.names[name]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownExit, name)
	}
	d, err := g.members[i].test(ctx)
	g.update()
	return d, err
}

// TunnelStatus is the tunnel client's own status of a porthole exit
// (sessions and streams included); ok is false for other kinds.
func (g *Group) TunnelStatus(name string) (st tunnel.Status, ok bool) {
	i, found := g.names[name]
	if !found {
		return tunnel.Status{}, false
	}
	p, ok := g.members[i].(*portholeExit)
	if !ok {
		return tunnel.Status{}, false
	}
	return p.t.Status(), true
}
