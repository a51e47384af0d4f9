package relay

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// parker is the process's one epoll instance on which parked directions
// wait (see side). Its watcher goroutine waits for the epoll descriptor in
// the runtime's poller, like any socket, and wakes the sides whose sockets
// became readable. It exists only while some relay holds a slot: the last
// one to leave closes it and waits for the watcher to end, so no goroutine
// outlives the connections it served.
var parker struct {
	mu sync.Mutex
	ep *epoller // nil while no relay holds a slot
}

type epoller struct {
	fd     int      // the epoll descriptor; f owns it
	f      *os.File // closing it ends the watcher
	rc     syscall.RawConn
	users  int     // slots and Holds held; guarded by parker.mu
	slots  []*side // by id; guarded by parker.mu
	free   []int32 // ids to reuse; guarded by parker.mu
	broken atomic.Bool
	done   chan struct{} // closed when the watcher has ended
}

// parkSlot is one side's registration with the parker: an id in its
// table and, once armed, its socket in the epoll set (EPOLLONESHOT, so an
// event fires once per arm). Only the goroutine that runs the side (or
// holds its lock) touches it.
type parkSlot struct {
	ep    *epoller
	id    int32
	rc    syscall.RawConn
	added bool // the socket is in the epoll set (armed or fired)
}

// open takes a slot for s if its source is a socket; without one the side
// never parks.
func (p *parkSlot) open(s *side) {
	sc, ok := s.src.(syscall.Conn)
	if !ok {
		return
	}
	if _, ok := s.src.(readWaiter); ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	parker.mu.Lock()
	defer parker.mu.Unlock()
	ep := joinParker()
	if ep == nil {
		return // parking is a saving, not a need: the side keeps its goroutine
	}
	if n := len(ep.free); n > 0 {
		p.id = ep.free[n-1]
		ep.free = ep.free[:n-1]
		ep.slots[p.id] = s
	} else {
		p.id = int32(len(ep.slots))
		ep.slots = append(ep.slots, s)
	}
	p.ep, p.rc = ep, rc
}

func (p *parkSlot) parkable() bool { return p.ep != nil }

// arm puts the socket in the epoll set for one event. Level-triggered: a
// socket that is readable already fires at once, so nothing that arrived
// before arming is missed. false (closed socket, broken epoll) means the
// caller waits on its goroutine instead.
func (p *parkSlot) arm() bool {
	if p.ep == nil || p.ep.broken.Load() {
		return false
	}
	op := unix.EPOLL_CTL_ADD
	if p.added {
		op = unix.EPOLL_CTL_MOD
	}
	var cerr error
	// Inside Control the descriptor is the socket's and stays open.
	err := p.rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: p.id}
		cerr = unix.EpollCtl(p.ep.fd, op, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		return false
	}
	p.added = true
	return true
}

// disarm takes the socket out of the epoll set. A closed socket left it
// already (the kernel drops a closed file from epoll sets); deleting by
// number then could hit another socket that reused it, which Control
// prevents: it refuses once the socket is closed.
func (p *parkSlot) disarm() {
	if p.ep == nil || !p.added {
		return
	}
	_ = p.rc.Control(func(fd uintptr) {
		_ = unix.EpollCtl(p.ep.fd, unix.EPOLL_CTL_DEL, int(fd), nil) // ENOENT: gone already
	})
	p.added = false
}

// close disarms and gives the slot back; the last one closes the epoll
// instance and waits for its watcher.
func (p *parkSlot) close() {
	ep := p.ep
	if ep == nil {
		return
	}
	p.disarm()
	p.ep = nil
	parker.mu.Lock()
	ep.slots[p.id] = nil
	ep.free = append(ep.free, p.id)
	parker.mu.Unlock()
	ep.leave()
}

// join counts one more user of the parker's epoll instance, making it
// (and starting its watcher) if there is none; nil if it cannot be made.
// Called with parker.mu held.
func joinParker() *epoller {
	ep := parker.ep
	if ep == nil {
		var err error
		if ep, err = newEpoller(); err != nil {
			return nil
		}
		parker.ep = ep
		go ep.watch()
	}
	ep.users++
	return ep
}

// leave is a user's going; the last one closes the epoll instance and
// waits for its watcher.
func (ep *epoller) leave() {
	parker.mu.Lock()
	ep.users--
	last := ep.users == 0
	if last && parker.ep == ep {
		parker.ep = nil // the next relay opens a new one
	}
	parker.mu.Unlock()
	if last {
		_ = ep.f.Close() // unblocks the watcher; a close error changes nothing here
		<-ep.done
	}
}

// Hold keeps the parker's epoll instance and its watcher while a server
// that relays is running, so that a client opening one connection at a
// time does not make and close one for each. The server releases it once,
// when it stops, after its connections ended (release is idempotent).
func Hold() (release func()) {
	parker.mu.Lock()
	ep := joinParker()
	parker.mu.Unlock()
	if ep == nil {
		return func() {}
	}
	var once sync.Once
	return func() { once.Do(ep.leave) }
}

func newEpoller() (*epoller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile hands it to the runtime's poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(fd), "relay-parker")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &epoller{fd: fd, f: f, rc: rc, done: make(chan struct{})}, nil
}

// watch waits for parked sockets to become readable and wakes their sides,
// until the epoll descriptor is closed.
func (ep *epoller) watch() {
	defer close(ep.done)
	var evs [128]unix.EpollEvent
	for {
		n := 0
		var werr error
		err := ep.rc.Read(func(fd uintptr) bool {
			for {
				m, err := unix.EpollWait(int(fd), evs[:], 0)
				if err == unix.EINTR {
					continue
				}
				n, werr = m, err
				return m > 0 || err != nil // nothing ready: the poller waits
			}
		})
		if err != nil {
			return // closed: the last slot was given back
		}
		if werr != nil {
			// Cannot happen with a valid descriptor and buffer; should it,
			// every side takes its direction back on a goroutine rather
			// than wait for events that will not come.
			ep.broken.Store(true)
			parker.mu.Lock()
			all := append([]*side(nil), ep.slots...)
			parker.mu.Unlock()
			for _, s := range all {
				if s != nil {
					s.wake()
				}
			}
			return
		}
		for i := range n {
			parker.mu.Lock()
			var s *side
			if id := evs[i].Fd; id >= 0 && int(id) < len(ep.slots) {
				s = ep.slots[id]
			}
			parker.mu.Unlock()
			// A slot given back and taken again since the event was
			// queued gets a spurious wake: its run finds nothing to read
			// and parks again.
			if s != nil {
				s.wake()
			}
		}
	}
}

// parkedNow counts the sides parked at this moment (for tests).
func parkedNow() int {
	parker.mu.Lock()
	var sides []*side
	if parker.ep != nil {
		sides = append(sides, parker.ep.slots...)
	}
	parker.mu.Unlock()
	n := 0
	for _, s := range sides {
		if s == nil {
			continue
		}
		s.mu.Lock()
		if s.state == sideParked {
			n++
		}
		s.mu.Unlock()
	}
	return n
}
