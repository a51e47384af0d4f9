package outbound

import "time"

// Hysteresis of the fastest policy: another exit takes over only when it
// is faster by both this fraction and this much, and has stayed so for
// fastestHold, so two exits of about the same latency do not trade places
// with every measure, nor with one slow PING of the exit in use.
const (
	fasterFraction = 0.3
	fasterBy       = 2 * time.Millisecond
	fastestHold    = 2 * time.Second
)

// pickLocked is choose, and a fastest pick that was not usable replaced
// at once by the one choose found; the caller holds mu.
func (g *Group) pickLocked(sts []ExitStatus, named int, skip []bool) (idx, pending, want int) {
	idx, pending, want = g.choose(sts, named, skip)
	if named < 0 && skip == nil && g.policy == PolicyFastest && idx >= 0 && idx != g.fastest {
		g.fastest, g.challenger = idx, -1
	}
	return idx, pending, want
}

// reconsiderLocked moves the fastest policy's pick to a clearly faster
// exit once it has been clearly faster for fastestHold (update calls it
// at every change and each refresh); the caller holds mu.
func (g *Group) reconsiderLocked(sts []ExitStatus, now time.Time) {
	if g.policy != PolicyFastest {
		return
	}
	best := -1
	for i := range sts {
		if sts[i].Healthy() && (best < 0 || faster(sts[i].Latency, sts[best].Latency)) {
			best = i
		}
	}
	cur := g.fastest
	switch {
	case cur < 0 || !sts[cur].Healthy():
		if best >= 0 {
			g.fastest = best
		}
		g.challenger = -1
	case best >= 0 && best != cur && clearlyFaster(sts[best].Latency, sts[cur].Latency):
		if g.challenger != best {
			g.challenger, g.challengerSince = best, now
		} else if now.Sub(g.challengerSince) >= fastestHold {
			g.fastest, g.challenger = best, -1
		}
	default:
		g.challenger = -1
	}
}

// choose is the exit for a new connection: idx the usable one (-1 if
// none), pending one that is connecting (-1 if none), want the one the
// error names when none is usable. named >= 0 is an exit a rule named;
// skip marks exits a dial already failed on.
func (g *Group) choose(sts []ExitStatus, named int, skip []bool) (idx, pending, want int) {
	usable := func(i int) bool { return sts[i].Healthy() && (skip == nil || !skip[i]) }
	connecting := func(i int) bool { return sts[i].State == ExitConnecting && (skip == nil || !skip[i]) }
	one := func(i int) (int, int, int) {
		switch {
		case usable(i):
			return i, -1, i
		case connecting(i):
			return -1, i, i
		}
		return -1, -1, i
	}
	if named >= 0 {
		return one(named)
	}
	switch g.policy {
	case PolicyManual:
		return one(g.selected)
	case PolicyFastest:
		// The pick stays while it is usable (reconsiderLocked moves it);
		// otherwise the fastest usable one.
		idx, pending, want = -1, -1, 0
		if g.fastest >= 0 {
			want = g.fastest
			if usable(g.fastest) {
				return g.fastest, -1, g.fastest
			}
		}
		for i := range sts {
			switch {
			case usable(i):
				if idx < 0 || faster(sts[i].Latency, sts[idx].Latency) {
					idx = i
				}
			case pending < 0 && connecting(i):
				pending = i
			}
		}
		return idx, pending, want
	default: // failover
		idx, pending, want = -1, -1, 0
		for i := range sts {
			switch {
			case usable(i):
				return i, -1, i
			case pending < 0 && connecting(i):
				pending = i
			}
		}
		return idx, pending, want
	}
}

// faster orders latencies, unknown (0) last.
func faster(a, b time.Duration) bool {
	if a == 0 || b == 0 {
		return a != 0
	}
	return a < b
}

// clearlyFaster is a over b by the hysteresis.
func clearlyFaster(a, b time.Duration) bool {
	if a == 0 {
		return false
	}
	if b == 0 {
		return true
	}
	return float64(a) < float64(b)*(1-fasterFraction) && b-a > fasterBy
}
