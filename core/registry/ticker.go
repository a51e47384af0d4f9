package registry

import "time"

// tickLoop publishes a Stats event every StatsInterval and aborts
// connections idle past the idle timeout.
func (r *Registry) tickLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.tick()
		}
	}
}

// tick publishes one Stats event and aborts, with ErrIdle, the open
// connections idle past the timeout; it returns those. Judging and aborting
// happen in one critical section, so a connection that moved bytes in
// between is never aborted as idle.
func (r *Registry) tick() (idle []*Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	st := &Stats{At: now}
	var liveUp, liveDown int64
	for _, c := range r.live {
		up, down := c.up.Load(), c.down.Load()
		liveUp += up
		liveDown += down
		if up != c.seenUp || down != c.seenDown {
			st.Deltas = append(st.Deltas, Delta{
				ID: c.meta.ID, Up: up, Down: down,
				DUp: up - c.seenUp, DDown: down - c.seenDown,
			})
			c.seenUp, c.seenDown = up, down
			c.lastActive = now
			continue
		}
		if r.opts.IdleTimeout > 0 && c.state == StateOpen && now.Sub(c.lastActive) >= r.opts.IdleTimeout {
			idle = append(idle, c)
			c.abortLocked(ErrIdle)
		}
	}
	totalUp, totalDown := r.closedUp+liveUp, r.closedDown+liveDown
	if secs := now.Sub(r.lastTick).Seconds(); secs > 0 {
		r.upRate = float64(totalUp-r.lastUp) / secs
		r.downRate = float64(totalDown-r.lastDown) / secs
	}
	r.lastTick, r.lastUp, r.lastDown = now, totalUp, totalDown
	st.Totals = r.totalsLocked()
	r.publish(Event{Kind: KindStats, Stats: st})
	return idle
}
