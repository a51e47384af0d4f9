package logring

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestTeeKeepsAndPassesOn(t *testing.T) {
	ring := New(Options{Size: 10, Level: slog.LevelDebug})
	var out bytes.Buffer
	log := slog.New(Tee(ring, slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	log.Debug("only in the ring", "n", 1)
	log.With("conn", "abc").WithGroup("g").Info("both", "k", "two words", slog.Group("sub", "x", 3))
	recs := ring.Snapshot(slog.LevelDebug)
	if len(recs) != 2 {
		t.Fatalf("kept %d records, want 2", len(recs))
	}
	if strings.Contains(out.String(), "only in the ring") {
		t.Errorf("stderr got a debug record below its level: %q", out.String())
	}
	if !strings.Contains(out.String(), "msg=both conn=abc g.k=\"two words\" g.sub.x=3") {
		t.Errorf("stderr line changed: %q", out.String())
	}
	got := recs[1].Text()
	if want := `both conn=abc g.k="two words" g.sub.x=3`; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	if recs[0].Seq+1 != recs[1].Seq {
		t.Errorf("seqs %d, %d not consecutive", recs[0].Seq, recs[1].Seq)
	}
	if info := ring.Snapshot(slog.LevelInfo); len(info) != 1 || info[0].Message != "both" {
		t.Errorf("info snapshot = %+v", info)
	}
}

func TestRingLevelFollowsLevelVar(t *testing.T) {
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	ring := New(Options{Level: &lv})
	log := slog.New(Tee(ring, slog.DiscardHandler))
	log.Info("dropped")
	lv.Set(slog.LevelInfo)
	log.Info("kept")
	if recs := ring.Snapshot(slog.LevelDebug); len(recs) != 1 || recs[0].Message != "kept" {
		t.Fatalf("records = %+v", recs)
	}
}

func TestRingWrapsOldestFirst(t *testing.T) {
	ring := New(Options{Size: 3})
	for i := range 7 {
		ring.Add(Record{Level: slog.LevelInfo, Message: fmt.Sprint(i)})
	}
	var got []string
	for _, r := range ring.Snapshot(slog.LevelDebug) {
		got = append(got, r.Message)
	}
	if strings.Join(got, ",") != "4,5,6" {
		t.Fatalf("kept %v, want 4,5,6", got)
	}
}

// The snapshot and the subscription together hold every record exactly
// once, in order, while writers race with the subscribe.
func TestSubscribeContinuesSnapshot(t *testing.T) {
	const writers, each = 4, 500
	ring := New(Options{Size: writers * each, SubscriberMax: writers * each})
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				ring.Add(Record{Level: slog.LevelInfo, Message: fmt.Sprint(w, i)})
			}
		}()
	}
	close(start)
	snap, sub := ring.Subscribe(slog.LevelDebug)
	wg.Wait()
	sub.Close()
	seqs := make([]uint64, 0, writers*each)
	for _, r := range snap {
		seqs = append(seqs, r.Seq)
	}
	for r := range sub.C {
		seqs = append(seqs, r.Seq)
	}
	if len(seqs) != writers*each {
		t.Fatalf("got %d records, want %d", len(seqs), writers*each)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, s)
		}
	}
	if err := sub.Err(); err != nil {
		t.Errorf("Err after Close = %v", err)
	}
}

func TestSubscriberLevelAndSlowReaderDropped(t *testing.T) {
	ring := New(Options{SubscriberMax: 2})
	_, warn := ring.Subscribe(slog.LevelWarn)
	_, slow := ring.Subscribe(slog.LevelDebug)
	for range 3 {
		ring.Add(Record{Level: slog.LevelInfo})
	}
	ring.Add(Record{Level: slog.LevelError, Message: "bad"})
	if r := <-warn.C; r.Message != "bad" {
		t.Errorf("warn reader got %+v", r)
	}
	n := 0
	for range slow.C { // closed after the queued ones
		n++
	}
	if n != 2 || !errors.Is(slow.Err(), ErrFellBehind) {
		t.Errorf("slow reader read %d then %v; want 2 then ErrFellBehind", n, slow.Err())
	}
	ring.Close()
	ring.Close()
	if _, ok := <-warn.C; ok || !errors.Is(warn.Err(), ErrClosed) {
		t.Errorf("after Close: open=%v err=%v", ok, warn.Err())
	}
	_, late := ring.Subscribe(slog.LevelDebug)
	if _, ok := <-late.C; ok || !errors.Is(late.Err(), ErrClosed) {
		t.Errorf("subscription on a closed ring: open=%v err=%v", ok, late.Err())
	}
	late.Close()
	warn.Close()
}
