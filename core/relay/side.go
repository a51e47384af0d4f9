package relay

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// parkAfter is how long the side direction waits, after it last moved
// bytes, before it parks (see side). Waiting that long on its goroutine
// first keeps a busy transfer from parking and waking at every pause
// between reads; a connection that has been quiet for that long is
// idle. Tests set it to 0: park at once.
var parkAfter = 50 * time.Millisecond

// errParked ends the side goroutine's copy: the direction is parked and
// the parker starts a new goroutine when its source becomes readable.
var errParked = errors.New("relay: direction parked")

type sideState uint8

const (
	sideRunning sideState = iota // a goroutine copies it; it may park
	sideParked                   // no goroutine: waiting in the parker
	sideJoined                   // Relay's caller has it: it never parks again
	sideDone                     // ended
)

// side is the direction of a relay that does not run on Relay's caller.
// Its goroutine exists only while bytes flow: when its source (a socket)
// has nothing to read, it parks — it registers the socket with the
// process's parker (one epoll instance on Linux) and its goroutine ends —
// and the parker starts a new goroutine once bytes, the end of the stream
// or an error arrive. An idle connection so costs one goroutine, not two.
// Where the source cannot be parked (a tunnel stream, other systems) the
// direction keeps its goroutine, waiting as before.
//
// Ownership: Relay creates the side and, in join, waits until every
// goroutine that ran it has ended; the parker only starts them.
type side struct {
	r        *relayRun // the relay it belongs to (for abort)
	dst, src net.Conn
	count    func(int64)
	q        spliceState

	mu    sync.Mutex
	state sideState
	slot  parkSlot // the registration with the parker, if parkable
	// wg counts the goroutines running the direction. Once Relay's caller
	// joined, a running one can only end with the direction, so waiting
	// for wg is waiting for the end (no channel to keep per connection).
	wg    sync.WaitGroup
	moved bool // bytes moved since the last wait: linger before parking
}

// start sets the direction going: parked at once where it can be (an idle
// connection then never has a goroutine for it), else on a goroutine.
func (s *side) start() {
	s.slot.open(s)
	s.mu.Lock()
	parked := s.slot.arm()
	if parked {
		s.state = sideParked
	} else {
		s.state = sideRunning
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if !parked {
		go s.run()
	}
}

// wake is the parker's: the source is readable (or spuriously: the run
// parks again at once), so a goroutine takes the direction over.
func (s *side) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != sideParked {
		return
	}
	s.state = sideRunning
	s.wg.Add(1)
	go s.run()
}

func (s *side) run() {
	defer s.wg.Done()
	err := copyHalf(s.dst, s.src, s.count, s, &s.q)
	if errors.Is(err, errParked) {
		return
	}
	s.end(err)
}

func (s *side) end(err error) {
	if err != nil {
		s.r.abort(err)
	}
	s.mu.Lock()
	s.state = sideDone
	s.mu.Unlock()
}

// park registers the direction with the parker unless Relay's caller has
// joined it; true means parked, and the goroutine must end.
func (s *side) park() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != sideRunning || !s.slot.arm() {
		return false
	}
	s.state = sideParked
	return true
}

// join is Relay's caller's, once its own direction ended: it runs a
// parked direction itself (its goroutine has nothing else to do), then
// waits for every goroutine that ran it — a running one ends only with
// the direction now that it may not park.
func (s *side) join() {
	s.mu.Lock()
	state := s.state
	if state != sideDone {
		s.state = sideJoined
	}
	s.mu.Unlock()
	switch state {
	case sideParked:
		s.slot.disarm() // no wake may start a goroutine for it now
		s.end(copyHalf(s.dst, s.src, s.count, nil, &s.q))
	}
	s.wg.Wait()
	s.slot.close()
}

// await waits until src (the side's source, a socket) is readable: ready
// (block false) says whether it is now; ready(true) waits. After bytes
// moved it waits on this goroutine for up to parkAfter, then parks
// (errParked) unless Relay's caller joined.
func (s *side) await(ready func(block bool) (bool, error)) error {
	if ok, err := ready(false); ok || err != nil {
		return err
	}
	if s.moved && parkAfter > 0 {
		s.moved = false
		if err := s.src.SetReadDeadline(time.Now().Add(parkAfter)); err != nil {
			return err
		}
		_, err := ready(true)
		// The deadline is only for this wait: Read and splice never see it.
		if derr := s.src.SetReadDeadline(time.Time{}); err == nil {
			err = derr
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	if s.park() {
		return errParked
	}
	_, err := ready(true)
	return err
}
