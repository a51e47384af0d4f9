package e2e

// The lifecycle test's scenarios: each is one client connection through the
// proxy, ended one way a connection can end, and checked against the
// registry's record of it.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"

	"porthole/core/registry"
)

// normal: echo a random payload, half-close, read everything back, compare
// checksums; the registry must have counted exactly those bytes.
func (x *lcRun) normal(r *rand.Rand, p lcProto) error {
	size := r.IntN(64 << 10)
	if r.IntN(10) == 0 {
		size = r.IntN(1 << 20)
	}
	target := x.origin.echo
	c, ok, err := x.tunnel(p, target)
	if !ok {
		return err
	}
	payload := make([]byte, size)
	off := r.Int64N(int64(len(lcPattern)))
	for i := range payload {
		payload[i] = lcPattern[(off+int64(i))%int64(len(lcPattern))]
	}
	wres := startWriter(c, payload, true)
	got, rerr := io.ReadAll(io.LimitReader(c.br, int64(size)+1))
	w := <-wres
	_ = c.conn.Close()
	if timedOut(rerr) || timedOut(w.err) {
		return fmt.Errorf("%s echo of %d bytes: client timed out: read %v, write %v", p, size, rerr, w.err)
	}
	if !isPattern(got, off) {
		return fmt.Errorf("%s echo of %d bytes: received bytes differ from those sent", p, size)
	}
	complete := rerr == nil && w.err == nil && len(got) == size && sha256.Sum256(got) == sha256.Sum256(payload)
	if !complete {
		if len(got) > size {
			return fmt.Errorf("%s echo: received %d bytes, sent %d", p, len(got), size)
		}
		return x.interrupted(c, target, fmt.Errorf("received %d of %d bytes: read %v, write %v", len(got), size, rerr, w.err))
	}
	return x.settleExact(c, target, "echo", int64(size), int64(size))
}

// targetSendsAndCloses: the target sends n bytes and hangs up; the client
// reads them all, then closes. Counts are exact: 4 bytes up, n down.
func (x *lcRun) targetSendsAndCloses(r *rand.Rand, p lcProto) error {
	n := r.IntN(256 << 10)
	target := x.origin.send
	c, ok, err := x.tunnel(p, target)
	if !ok {
		return err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(n))
	if _, err := c.conn.Write(hdr[:]); err != nil {
		return x.interrupted(c, target, err)
	}
	got, rerr := io.ReadAll(io.LimitReader(c.br, int64(n)+1))
	_ = c.conn.Close()
	if !isPattern(got, 0) || len(got) > n {
		return fmt.Errorf("%s: target's %d bytes arrived wrong (%d bytes)", p, n, len(got))
	}
	if rerr != nil || len(got) != n {
		return x.interrupted(c, target, fmt.Errorf("received %d of %d bytes: %v", len(got), n, rerr))
	}
	return x.settleExact(c, target, "send and close", 4, int64(n))
}

// clientHangsUp: the client closes or resets while bytes flow both ways.
func (x *lcRun) clientHangsUp(r *rand.Rand, p lcProto) error {
	target := x.origin.echo
	c, ok, err := x.tunnel(p, target)
	if !ok {
		return err
	}
	limit := int64(256<<10 + r.IntN(768<<10))
	wres := startPatternWriter(c, limit)
	k := r.Int64N(limit / 2) // sometimes 0: hang up right after the handshake
	got := make([]byte, k)
	_, rerr := io.ReadFull(c.br, got)
	c.hangUp(r.IntN(2) == 0)
	w := <-wres
	if timedOut(rerr) || timedOut(w.err) {
		return fmt.Errorf("%s: client timed out: read %v, write %v", p, rerr, w.err)
	}
	info, err := x.ev.settle(c.laddr, target)
	if err != nil {
		return err
	}
	if rerr != nil && !errors.Is(info.Err, registry.ErrClosedByUser) {
		return fmt.Errorf("%s %s: ended before the client hung up (%v), reason %v", p, info.ID, rerr, info.Err)
	}
	if rerr != nil {
		got = nil // how much arrived is unknown
	}
	return checkEcho(info, w.n, got, 0)
}

// targetResets: the target resets the connection while the client writes.
// The client must see its connection end (not hang).
func (x *lcRun) targetResets(r *rand.Rand, p lcProto) error {
	target := x.origin.reset
	c, ok, err := x.tunnel(p, target)
	if !ok {
		return err
	}
	m := r.IntN(128 << 10)
	payload := make([]byte, 4+m+256<<10)
	binary.BigEndian.PutUint32(payload, uint32(m))
	wres := startWriter(c, payload, true)
	n, rerr := io.Copy(io.Discard, c.br)
	w := <-wres
	_ = c.conn.Close()
	if timedOut(rerr) || timedOut(w.err) {
		return fmt.Errorf("%s: target reset, client timed out: read %v, write %v", p, rerr, w.err)
	}
	if n != 0 {
		return fmt.Errorf("%s: the resetting target never writes, client read %d bytes", p, n)
	}
	_, err = x.ev.settle(c.laddr, target)
	return err
}

// closeByID: the test closes the connection through the registry while
// bytes flow both ways.
func (x *lcRun) closeByID(_ *rand.Rand, p lcProto) error {
	target := x.origin.echo
	c, ok, err := x.tunnel(p, target)
	if !ok {
		return err
	}
	id, err := x.ev.claim(c.laddr, target)
	if err != nil {
		_ = c.conn.Close()
		return err
	}
	wres := startPatternWriter(c, 64<<20)
	first := make([]byte, 16<<10)
	_, rerr := io.ReadFull(c.br, first)
	if rerr == nil {
		x.closeConn(id)
	}
	rest, err2 := io.ReadAll(c.br) // ends when the proxy closes the connection
	_ = c.conn.Close()
	w := <-wres
	if timedOut(rerr) || timedOut(err2) || timedOut(w.err) {
		return fmt.Errorf("%s %s: closed by id, client timed out: read %v/%v, write %v", p, id, rerr, err2, w.err)
	}
	if w.n == 64<<20 {
		return fmt.Errorf("%s %s: the client could write 64 MiB after CloseConn", p, id)
	}
	info, err := x.closedByUser(p, id, "closed by id")
	if err != nil {
		return err
	}
	got := append(first, rest...) // what arrived, however the read ended
	if rerr != nil {
		got = nil // ReadFull failed: how much of first arrived is unknown
	}
	return checkEcho(info, w.n, got, 0)
}

// closeInHandshake: the client gives up before the proxy could answer:
// half a greeting, half a request, or a whole request it never waits for.
func (x *lcRun) closeInHandshake(r *rand.Rand, p lcProto) error {
	c, err := dialProxy(x.proxy, p)
	if err != nil {
		return err
	}
	target := x.origin.echo
	rst := r.IntN(2) == 0
	switch r.IntN(4) {
	case 0: // part of the first message
		var part []byte
		if p == lcConnect {
			line := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
			part = []byte(line[:1+r.IntN(len(line)-1)])
		} else {
			part = []byte{5, 1, 0}[:1+r.IntN(2)]
		}
		_, err = c.conn.Write(part)
	case 1: // SOCKS5: greeting done, half the request; CONNECT: nothing at all
		if p == lcSOCKS5 {
			if _, err = c.conn.Write([]byte{5, 1, 0}); err == nil {
				var m [2]byte
				if _, err = io.ReadFull(c.br, m[:]); err == nil {
					req := socks5Request(target)
					_, err = c.conn.Write(req[:1+r.IntN(len(req)-1)])
				}
			}
		}
	default: // the whole request, then a close (FIN) at once: the proxy
		// reads it, dials, and answers into a closed socket.
		if err := c.request(target); err != nil {
			_ = c.conn.Close()
			return fmt.Errorf("request: %w", err)
		}
		_ = c.conn.Close()
		_, err := x.ev.settle(c.laddr, target)
		return err
	}
	c.hangUp(rst)
	if timedOut(err) {
		return fmt.Errorf("%s: partial handshake: client timed out: %w", p, err)
	}
	return nil
}

// closeInDial: the proxy is dialling a target that does not answer. Either
// the test closes the connection by id (the dial is cancelled), or the
// client hangs up and the dial fails by itself.
func (x *lcRun) closeInDial(r *rand.Rand, p lcProto) error {
	byID := r.IntN(2) == 0
	target := lcBlackholeTimeout
	if byID {
		target = lcBlackholeForever
	}
	c, err := startRequest(x.proxy, p, target)
	if err != nil {
		return err
	}
	id, err := x.ev.claim(c.laddr, target)
	if err != nil {
		_ = c.conn.Close()
		return err
	}
	if !byID {
		c.hangUp(r.IntN(2) == 0)
		_, err := x.ev.closedInfo(id)
		return err
	}
	x.closeConn(id)
	rerr := c.reply()
	_ = c.conn.Close()
	if !errors.Is(rerr, errRefused) && !errors.Is(rerr, errNoReply) {
		return fmt.Errorf("%s %s: closed during dial, reply: %v", p, id, rerr)
	}
	if timedOut(rerr) {
		return fmt.Errorf("%s %s: closed during dial, client timed out: %w", p, id, rerr)
	}
	_, err = x.closedByUser(p, id, "closed during dial")
	return err
}

// bothClose: client and target close (or reset) at the same moment.
func (x *lcRun) bothClose(r *rand.Rand, p lcProto) error {
	target := x.origin.meet
	c, ok, err := x.tunnel(p, target)
	if !ok {
		return err
	}
	tok := r.Uint64()
	m := &lcMeeting{now: make(chan struct{}), rst: r.IntN(2) == 0}
	x.origin.addMeeting(tok, m)
	defer x.origin.removeMeeting(tok)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], tok)
	_, err = c.conn.Write(b[:])
	if err == nil {
		_, err = io.ReadFull(c.br, b[:1]) // the origin has the token
	}
	if err != nil {
		close(m.now)
		return x.interrupted(c, target, err)
	}
	rst := r.IntN(2) == 0
	close(m.now)
	c.hangUp(rst)
	_, err = x.ev.settle(c.laddr, target)
	return err
}

// closeAllRace: CloseAll while this cycle's request is in flight (and
// whatever the other clients are doing).
func (x *lcRun) closeAllRace(r *rand.Rand, p lcProto) error {
	target := x.origin.echo
	if r.IntN(2) == 0 {
		target = lcBlackholeTimeout
	}
	c, err := startRequest(x.proxy, p, target)
	if err != nil {
		return err
	}
	x.reg.CloseAll()
	rerr := c.reply()
	_ = c.conn.Close()
	if timedOut(rerr) {
		return fmt.Errorf("%s: CloseAll race: client timed out: %w", p, rerr)
	}
	if rerr != nil && !errors.Is(rerr, errRefused) && !errors.Is(rerr, errNoReply) {
		return fmt.Errorf("%s: CloseAll race: %w", p, rerr)
	}
	_, err = x.ev.settle(c.laddr, target)
	return err
}
