// Package procinfo finds the program on this machine that opened a TCP
// connection to the proxy. A local client's socket is the peer of the one
// the proxy accepted, so the accepted connection's remote address is the
// client socket's local address and its local address the client's peer:
// the four numbers name the client's socket exactly, and the operating
// system's socket table says who owns it.
//
// The answer is never a guess: when the owner cannot be proven (it exited,
// it belongs to another user and we may not look, the OS is not supported,
// the client is another machine) the Process says "unknown" and why.
package procinfo

import (
	"net"
	"net/netip"
	"sync/atomic"

	"porthole/core/registry"
)

// Reasons a Process is unknown (registry.Process.Unknown).
const (
	ReasonRemote       = "remote client"
	ReasonExited       = "process exited"
	ReasonNoPermission = "no permission"
	ReasonUnsupported  = "not supported on this OS"
	ReasonNotFound     = "no process holds the socket"
	ReasonFailed       = "lookup failed"
	ReasonNotTCP       = "not a TCP connection"
)

// Stats counts what a Resolver did since New.
type Stats struct {
	Lookups   uint64 // Lookup calls that asked the OS (not remote, not TCP)
	Found     uint64 // of them, answered with a known program
	CacheHits uint64 // of Found, answered from the cache without a scan of every process
	Quick     uint64 // of Lookups, answered by Quick (on the caller's goroutine)
	FullScans uint64 // scans of every process's open files
	// SharedExecChecks: of CacheHits, those whose exec check a lookup
	// begun after the connection's accept had made (Resolver.Mark).
	SharedExecChecks uint64
	// Errors counts the OS queries that failed for another reason than
	// "no such socket" (LastError says the latest); a lookup retries one
	// once before it answers ReasonFailed.
	Errors uint64
}

// HitRate is CacheHits / Found, 0 when nothing was found.
func (s Stats) HitRate() float64 {
	if s.Found == 0 {
		return 0
	}
	return float64(s.CacheHits) / float64(s.Found)
}

// Resolver looks connections' programs up and caches what it learnt about
// processes, so that the next connection of the same program costs little.
//
// Concurrency: Lookup is safe from any number of goroutines at once; each
// call blocks for as long as the OS takes to answer (microseconds when the
// cache knows the program, a scan of every process's open files when it
// does not), so callers run it beside, never in front of, the work that
// must not wait, and bound how many run at once. Lookup starts no
// goroutine. Close releases the OS handles the Resolver keeps (netlink
// sockets and, of cached programs on Linux, their /proc directories, fd
// directories and epoll instances' fdinfo); it is
// idempotent, and a Lookup after (or during) Close
// still answers, only without reusing handles.
type Resolver struct {
	os osResolver

	lookups, found, hits, quick, scans atomic.Uint64
	// sharedChecks counts the cache hits whose exec check another lookup's
	// served (procEntry.stillSameProgram).
	sharedChecks atomic.Uint64

	// marks orders the events that exec checks are shared by: an
	// accepted connection (Mark) and the start of a check.
	marks atomic.Uint64

	errs    atomic.Uint64
	lastErr atomic.Pointer[error]
}

// failed records an OS query's failure (Stats.Errors, LastError).
func (r *Resolver) failed(err error) {
	r.errs.Add(1)
	r.lastErr.Store(&err)
}

// LastError returns the latest OS query failure that Stats.Errors counts,
// nil if none: what a "lookup failed" answer does not say.
func (r *Resolver) LastError() error {
	if p := r.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Mark returns a number greater than every Mark before it: a caller takes
// one as it accepts a connection and hands it to QuickSince, so that an
// exec check another lookup began after the accept serves this one too.
func (r *Resolver) Mark() uint64 { return r.marks.Add(1) }

// New returns a Resolver for this OS.
func New() *Resolver {
	r := &Resolver{}
	r.os = newOSResolver(r)
	return r
}

// Lookup returns the program that owns the client end of an accepted
// connection whose local (the proxy's) and remote (the client's) addresses
// are given. It never returns nil.
func (r *Resolver) Lookup(local, remote net.Addr) *registry.Process {
	l, lok := addrPort(local)
	rm, rok := addrPort(remote)
	if !lok || !rok {
		return unknown(ReasonNotTCP, -1)
	}
	return r.LookupAddrs(l, rm)
}

// LookupAddrs is Lookup on parsed addresses.
func (r *Resolver) LookupAddrs(local, remote netip.AddrPort) *registry.Process {
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if !IsLocalClient(local.Addr(), remote.Addr()) {
		return unknown(ReasonRemote, -1)
	}
	r.lookups.Add(1)
	p := r.os.lookup(local, remote)
	if p.Known() {
		r.found.Add(1)
	}
	return p
}

// Quick answers like LookupAddrs when the cache settles it in a few
// system calls (a program seen before, on a remembered fd number), and
// otherwise returns ok false without having counted a lookup: then only
// LookupAddrs can tell. It costs less than handing the lookup to another
// goroutine, so a caller tries it first, where it is.
func (r *Resolver) Quick(local, remote netip.AddrPort) (p *registry.Process, ok bool) {
	return r.QuickSince(local, remote, r.Mark())
}

// QuickSince is Quick for a connection accepted before since was taken
// (Mark): the checks other lookups began after since serve it too.
func (r *Resolver) QuickSince(local, remote netip.AddrPort, since uint64) (p *registry.Process, ok bool) {
	q, can := r.os.(quickResolver)
	if !can {
		return nil, false
	}
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if !IsLocalClient(local.Addr(), remote.Addr()) {
		return unknown(ReasonRemote, -1), true
	}
	if p, ok = q.quick(local, remote, since); !ok {
		return nil, false
	}
	r.lookups.Add(1)
	r.quick.Add(1)
	if p.Known() {
		r.found.Add(1)
	}
	return p, true
}

// Ended tells the Resolver that a connection it attributed (Lookup,
// Quick) has ended: the fd its program held it on is probably free, and
// the program's next connection likely gets it.
func (r *Resolver) Ended(local, remote netip.AddrPort) {
	if q, can := r.os.(quickResolver); can {
		q.ended(netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()))
	}
}

// IsLocalClient reports whether a client at remote, connected to the
// proxy's address local, is on this machine: it came over loopback, or
// from the very address it reached (a client using the machine's LAN
// address). Only then is its socket in this machine's tables.
func IsLocalClient(local, remote netip.Addr) bool {
	local, remote = local.Unmap(), remote.Unmap()
	return remote.IsLoopback() || (remote.IsValid() && remote == local)
}

// Stats returns the counters.
func (r *Resolver) Stats() Stats {
	return Stats{
		Lookups:   r.lookups.Load(),
		Found:     r.found.Load(),
		CacheHits: r.hits.Load(),
		Quick:     r.quick.Load(),
		FullScans: r.scans.Load(),

		SharedExecChecks: r.sharedChecks.Load(),
		Errors:           r.errs.Load(),
	}
}

// Close releases the Resolver's OS handles. Idempotent.
func (r *Resolver) Close() error { return r.os.close() }

func unknown(reason string, uid int) *registry.Process {
	return &registry.Process{Unknown: reason, UID: uid}
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	t, ok := a.(*net.TCPAddr)
	if !ok || t == nil {
		return netip.AddrPort{}, false
	}
	ap := t.AddrPort()
	return ap, ap.Addr().IsValid()
}
