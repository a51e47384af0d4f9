package outbound

import (
	"fmt"
	"strings"
	"time"
)

// Kind is what an exit is: a Porthole exit server, or an upstream proxy.
type Kind string

const (
	KindPorthole Kind = "porthole" // a porthole-exit server: one tunnel session
	KindHTTP     Kind = "http"     // an upstream HTTP proxy: CONNECT per connection
	KindSOCKS5   Kind = "socks5"   // an upstream SOCKS5 proxy, names resolved by it
)

// ParseKind checks a kind name; "" is porthole, the kind of old configs.
func ParseKind(s string) (Kind, error) {
	return parseName("exit kind", s, KindPorthole, KindPorthole, KindHTTP, KindSOCKS5)
}

// Policy is how a Group picks the exit for a new connection that no rule
// sent to a named exit.
type Policy string

const (
	// PolicyManual: the exit the user selected, healthy or not (a down
	// selection fails fast, it does not move).
	PolicyManual Policy = "manual"
	// PolicyFastest: the healthy exit with the lowest latency; it moves
	// only to one clearly faster (hysteresis), so equal exits do not flap.
	PolicyFastest Policy = "fastest"
	// PolicyFailover: the first healthy exit in list order.
	PolicyFailover Policy = "failover"
)

// ParsePolicy checks a policy name; "" is failover.
func ParsePolicy(s string) (Policy, error) {
	return parseName("exit policy", s, PolicyFailover, PolicyManual, PolicyFastest, PolicyFailover)
}

// ExitState is an exit's health as the group sees it.
type ExitState uint8

const (
	ExitConnecting ExitState = iota // first attempt (or a reconnect) in flight
	ExitUp                          // usable: session up, or the proxy answered
	ExitDown                        // the last attempt failed; Retry says when the next is
	ExitAuthFailed                  // the exit refused the credentials; retried with backoff
	ExitStopped                     // not running (the proxy is stopped)
)

func (s ExitState) String() string {
	switch s {
	case ExitConnecting:
		return "connecting"
	case ExitUp:
		return "connected"
	case ExitDown:
		return "failed"
	case ExitAuthFailed:
		return "authentication failed"
	case ExitStopped:
		return "stopped"
	}
	return fmt.Sprintf("exit-state(%d)", uint8(s))
}

// ExitStatus is one exit's state for display and for the policy.
type ExitStatus struct {
	Name  string
	Kind  Kind
	URL   string // without credentials
	State ExitState
	// Latency is the last measured round trip: the tunnel session's PING
	// for porthole exits, the connect probe's for upstream proxies; 0 when
	// not known yet.
	Latency time.Duration
	Err     error     // why the last attempt or session failed; nil if none did
	Since   time.Time // when State began
	Retry   time.Time // ExitDown, ExitAuthFailed: when the next attempt starts
	// Active: the group's policy sends new connections here now.
	// Selected: the user's manual pick (exit_selected).
	Active, Selected bool
}

// Healthy reports whether new connections may go to the exit.
func (s ExitStatus) Healthy() bool { return s.State == ExitUp }

// String is the status in one line for people: "home: connected · 12 ms",
// "office: failed since 12:03: connection refused · next try in 8 s".
func (s ExitStatus) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", s.Name, s.State)
	switch s.State {
	case ExitUp:
		if s.Latency > 0 {
			fmt.Fprintf(&b, " · %s", roundLatency(s.Latency))
		}
	case ExitDown, ExitAuthFailed:
		writeDownTail(&b, s.Since, s.Err, s.Retry, " · ")
	}
	return b.String()
}

// writeDownTail is what a line about a down exit ends with, in the status
// and in the dial error alike: " since 12:03: cause", then the next try
// after retrySep. Zero and nil parts are left out.
func writeDownTail(b *strings.Builder, since time.Time, err error, retry time.Time, retrySep string) {
	if !since.IsZero() {
		fmt.Fprintf(b, " since %s", since.Format("15:04"))
	}
	if err != nil {
		fmt.Fprintf(b, ": %v", err)
	}
	if !retry.IsZero() {
		b.WriteString(retrySep)
		b.WriteString(nextTry(retry))
	}
}

// roundLatency shows a latency the way people read one: 0.4 ms, 12 ms.
func roundLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

// nextTry says when the next attempt is, in whole seconds: "next try in
// 8 s", or "retrying now" when it is due.
func nextTry(t time.Time) string {
	d := time.Until(t)
	if d < 500*time.Millisecond {
		return "retrying now"
	}
	return fmt.Sprintf("next try in %d s", d.Round(time.Second)/time.Second)
}

// ExitNamer is a connection that knows the exit that carried it: the
// Group's connections are. inbound records the name in the registry.
type ExitNamer interface {
	ExitName() string
}
