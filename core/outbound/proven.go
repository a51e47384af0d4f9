package outbound

import (
	"sync"
	"time"

	"porthole/core/tunnel"
)

// A CONNECT or SOCKS client is answered only once its target is connected,
// so that a refusal reaches it in its own protocol (502, a SOCKS reply
// code). Through a tunnel that costs a round trip to the exit before the
// client may send its first byte. For a target the exit opened a moment
// ago the answer is all but certain, and waiting for it buys nothing: a
// browser opens its next connection to the same host within seconds. So
// an exit remembers which targets it opened (the way TCP Fast Open keeps
// a server's cookie), and a dial to one of those returns before the exit
// answers; the client's first bytes travel right behind the OPEN. If the
// exit refuses after all, the client's connection is reset and the target
// forgotten, so the next client gets the refusal in its own protocol.
const (
	// provenFor is how long an exit's OPEN_OK for a target vouches for
	// the next connection to it; each OPEN_OK renews it.
	provenFor = 5 * time.Minute
	// provenMax bounds the targets an exit remembers.
	provenMax = 4096
)

// proven is the targets an exit opened within provenFor on its current
// session, each with the time of its last OPEN_OK, or of the refusal that
// took it back. A new session starts empty: a reconnect may reach another
// exit behind the same address. Times are monotonic nanoseconds (mono).
//
// Concurrency: safe from any goroutine; mu is a leaf lock.
type proven struct {
	mu   sync.Mutex
	sess *tunnel.Session // whose OPEN_OKs these are; compared, never used
	at   map[string]provenEntry
}

type provenEntry struct {
	at      int64 // when the OPEN_OK, or the refusal, came
	refused bool  // a refusal: kept so that an older OPEN_OK cannot undo it
}

var monoEpoch = time.Now()

// mono is a monotonic clock in nanoseconds, for proven's times: 8 bytes
// where a time.Time is 24, and a tunnelled connection keeps one.
func mono() int64 { return int64(time.Since(monoEpoch)) }

// has says whether target was opened on sess within provenFor of now.
func (p *proven) has(sess *tunnel.Session, target string, now int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.at[target]
	return ok && p.sess == sess && !e.refused && now-e.at < int64(provenFor)
}

// add records an OPEN_OK on sess at now for an OPEN sent at sent, unless
// the target was refused after that OPEN was sent: answers are recorded
// as their waiters run, not as they arrived, and a refusal must not be
// undone by an older success. When the set is full, the expired entries
// go, and if none had expired, all of them: each target then waits for
// its exit once more, which is what a target not seen before does anyway.
func (p *proven) add(sess *tunnel.Session, target string, sent, now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != sess || p.at == nil {
		p.sess, p.at = sess, make(map[string]provenEntry)
	}
	e, ok := p.at[target]
	if ok && e.refused && e.at > sent {
		return
	}
	if !ok && len(p.at) >= provenMax {
		for k, e := range p.at {
			if now-e.at >= int64(provenFor) {
				delete(p.at, k)
			}
		}
		if len(p.at) >= provenMax {
			clear(p.at)
		}
	}
	p.at[target] = provenEntry{at: now}
}

// forget takes target back at now: the exit refused it on sess. A refusal
// on an older session says nothing of the current one.
func (p *proven) forget(sess *tunnel.Session, target string, now int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != sess || p.at == nil {
		return
	}
	if _, ok := p.at[target]; !ok && len(p.at) >= provenMax {
		return // nothing to take back, and no room for the record of it
	}
	p.at[target] = provenEntry{at: now, refused: true}
}

// reset forgets every target and the session (the tunnel stopped).
func (p *proven) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sess, p.at = nil, nil
}
