package ui

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"porthole/app/logring"
)

// logsLevels are the Logs window's level choices, least first.
var logsLevels = []struct {
	name  string
	level slog.Level
}{
	{"Debug", slog.LevelDebug},
	{"Info", slog.LevelInfo},
	{"Warning", slog.LevelWarn},
	{"Error", slog.LevelError},
}

// logLine is one record as the window shows and filters it.
type logLine struct {
	text  string // "15:04:05.000 INFO  message key=value"
	lower string // text, lower-cased, for the filter
}

func lineOf(r logring.Record) logLine {
	t := fmt.Sprintf("%s %-5s %s", r.Time.Format("15:04:05.000"), r.Level.String(), r.Text())
	return logLine{text: t, lower: strings.ToLower(t)}
}

// logsModel is what the Logs window holds: the records of the chosen
// level (at most max, the newest), the text filter, and whether the view
// is paused. Fyne thread only.
type logsModel struct {
	max     int
	all     []logLine
	filter  string    // lower-cased
	paused  bool      // the view keeps what it showed; records still arrive
	visible []logLine // what the list shows
	held    int       // records arrived since the pause
}

func (m *logsModel) reset(recs []logring.Record) {
	m.all = m.all[:0]
	m.add(recs)
	m.held = 0
}

func (m *logsModel) add(recs []logring.Record) {
	for _, r := range recs {
		m.all = append(m.all, lineOf(r))
	}
	if over := len(m.all) - m.max; over > 0 {
		m.all = append(m.all[:0], m.all[over:]...)
	}
	if m.paused {
		m.held += len(recs)
		return
	}
	m.refilter()
}

// refilter recomputes what the list shows.
func (m *logsModel) refilter() {
	m.visible = m.visible[:0:0]
	for _, l := range m.all {
		if m.filter == "" || strings.Contains(l.lower, m.filter) {
			m.visible = append(m.visible, l)
		}
	}
}

func (m *logsModel) setFilter(s string) {
	m.filter = strings.ToLower(strings.TrimSpace(s))
	if !m.paused {
		m.refilter()
	}
}

func (m *logsModel) setPaused(p bool) {
	m.paused = p
	if !p {
		m.held = 0
		m.refilter()
	}
}

// text is what Copy puts on the clipboard: the lines shown.
func (m *logsModel) text() string {
	var b strings.Builder
	for _, l := range m.visible {
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// logsWindow shows the app's last log records from the ring, live: a
// level choice (the ring's per-reader level), a text filter, pause and
// copy. It reads the ring only while shown.
//
// Concurrency: Fyne thread only, except the feed's goroutine, which
// hands records over through post (fyne.Do).
type logsWindow struct {
	app  fyne.App
	ring *logring.Ring
	post func(func())
	// ended reports that the Fyne loop is over, when fyne.Do runs its
	// function on the caller's goroutine: a flush then touches nothing.
	// nil: never.
	ended func() bool

	win    fyne.Window
	level  *widget.Select
	filter *widget.Entry
	pause  *widget.Check
	count  *widget.Label
	list   *widget.List
	model  logsModel
	feed   *logFeed // while shown
	chosen slog.Level
}

func newLogsWindow(a fyne.App, ring *logring.Ring, post func(func())) *logsWindow {
	return &logsWindow{app: a, ring: ring, post: post, chosen: slog.LevelInfo,
		model: logsModel{max: logring.DefaultSize}}
}

// Show opens the window (or brings it to the front) and starts reading.
func (w *logsWindow) Show() {
	if w.win != nil {
		w.start()
		w.win.Show()
		w.win.RequestFocus()
		return
	}
	win := w.app.NewWindow("Porthole Logs")
	w.win = win
	names := make([]string, len(logsLevels))
	for i, l := range logsLevels {
		names[i] = l.name
	}
	w.level = widget.NewSelect(names, func(name string) {
		for _, l := range logsLevels {
			if l.name == name && l.level != w.chosen {
				w.chosen = l.level
				w.restart()
			}
		}
	})
	w.level.SetSelected(levelName(w.chosen))
	w.filter = widget.NewEntry()
	w.filter.SetPlaceHolder("Filter: text in the message, a conn id, a host…")
	w.filter.OnChanged = func(s string) {
		w.model.setFilter(s)
		w.refresh()
	}
	w.pause = widget.NewCheck("Pause", func(on bool) {
		w.model.setPaused(on)
		w.refresh()
	})
	copyButton := widget.NewButton("Copy", func() { w.app.Clipboard().SetContent(w.model.text()) })
	w.count = widget.NewLabel("")
	w.list = widget.NewList(
		func() int { return len(w.model.visible) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.TextStyle = fyne.TextStyle{Monospace: true}
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if id < len(w.model.visible) {
				o.(*widget.Label).SetText(w.model.visible[id].text)
			}
		})
	top := container.NewBorder(nil, nil, w.level, container.NewHBox(w.pause, copyButton), w.filter)
	win.SetContent(container.NewBorder(top, w.count, nil, nil, w.list))
	win.Resize(fyne.NewSize(900, 520))
	win.SetCloseIntercept(w.hide)
	w.start()
	win.Show()
}

// hide is the window's close button: the window keeps its choices, and
// stops reading until shown again.
func (w *logsWindow) hide() {
	w.stop()
	w.win.Hide()
}

func levelName(l slog.Level) string {
	for _, x := range logsLevels {
		if x.level == l {
			return x.name
		}
	}
	return "Info"
}

// refresh shows the model.
func (w *logsWindow) refresh() {
	if w.list == nil {
		return
	}
	w.list.Refresh()
	switch {
	case w.model.paused:
		w.count.SetText(fmt.Sprintf("Paused · %d shown · %d new", len(w.model.visible), w.model.held))
	default:
		w.count.SetText(fmt.Sprintf("%d shown of %d", len(w.model.visible), len(w.model.all)))
		if n := len(w.model.visible); n > 0 {
			w.list.ScrollToBottom()
		}
	}
}

// start subscribes at the chosen level, unless already reading.
func (w *logsWindow) start() {
	if w.feed != nil || w.ring == nil {
		return
	}
	snap, sub := w.ring.Subscribe(w.chosen)
	w.model.reset(snap)
	w.feed = startLogFeed(sub, w.post, w.flush)
	w.refresh()
}

// stop ends the subscription and waits for its goroutine.
func (w *logsWindow) stop() {
	if w.feed != nil {
		w.feed.close()
		w.feed = nil
	}
}

// restart reads again from a fresh snapshot: a new level, or a feed that
// fell behind.
func (w *logsWindow) restart() {
	if w.feed == nil {
		return // not shown: the next start uses the choice
	}
	w.stop()
	w.start()
}

// flush takes what f gathered; Fyne thread.
func (w *logsWindow) flush(f *logFeed) {
	if w.ended != nil && w.ended() {
		return
	}
	recs, behind := f.take()
	if w.feed != f {
		return // a feed stopped since
	}
	if behind {
		w.restart()
		return
	}
	w.model.add(recs)
	w.refresh()
}

// logFeed reads one subscription on its own goroutine and hands the
// records to the Fyne thread in batches: at most one post is pending, so
// a burst of records costs one redraw, and the goroutine never waits on
// the Fyne thread for more than that one.
type logFeed struct {
	sub  *logring.Subscription
	done chan struct{}

	mu      sync.Mutex
	pending []logring.Record
	posted  bool
	behind  bool // the subscription was dropped: read again from a snapshot
}

func startLogFeed(sub *logring.Subscription, post func(func()), flush func(*logFeed)) *logFeed {
	f := &logFeed{sub: sub, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for rec := range sub.C {
			f.push(&rec, false, post, flush)
		}
		if errors.Is(sub.Err(), logring.ErrFellBehind) { // read again from a snapshot
			f.push(nil, true, post, flush)
		}
	}()
	return f
}

func (f *logFeed) push(rec *logring.Record, behind bool, post func(func()), flush func(*logFeed)) {
	f.mu.Lock()
	if rec != nil {
		f.pending = append(f.pending, *rec)
	}
	f.behind = f.behind || behind
	need := !f.posted
	f.posted = true
	f.mu.Unlock()
	if need {
		post(func() { flush(f) })
	}
}

func (f *logFeed) take() ([]logring.Record, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	recs, behind := f.pending, f.behind
	f.pending, f.posted, f.behind = nil, false, false
	return recs, behind
}

// close ends the subscription and waits for the goroutine.
func (f *logFeed) close() {
	f.sub.Close()
	<-f.done
}
