package ui

import (
	"context"
	"fmt"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"porthole/app"
	"porthole/app/config"
	"porthole/core/outbound"
)

// exitsSection is the Settings window's view of the exits in use: each
// one's state and latency, renewed each second while the window is open,
// a Test now button and a Use button (the manual pick, saved and taken at
// once). The list and the policy are edited in the form (exitsEditor) and
// applied with it; the window builds the section again after an Apply.
//
// Concurrency: built and changed on the Fyne thread; its refresher
// goroutine and the buttons' work only reach the widgets through fyne.Do.
// close stops the refresher and waits for it; it is idempotent.
type exitsSection struct {
	ctl  *app.Controller
	path string

	content fyne.CanvasObject
	rows    map[string]*exitRow
	status  *widget.Label

	// picked, if set, runs on the Fyne thread after Use saved a pick.
	picked func(name string)
	// work runs a button's slow part (a test, a save); nil: a goroutine
	// of its own. Tests run it in place, on their own thread.
	work     func(func())
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type exitRow struct {
	state  *widget.Label
	tested string // the last Test now result, shown after the state
	use    *widget.Button
}

// exitsTestTimeout bounds one Test now.
const exitsTestTimeout = 10 * time.Second

var exitPolicies = []string{string(outbound.PolicyFailover), string(outbound.PolicyFastest), string(outbound.PolicyManual)}

// newExitsSection builds the section for the exits in use; nil when the
// settings have none. refresh > 0 renews the rows that often; work is as
// exitsSection's.
func newExitsSection(ctl *app.Controller, path string, refresh time.Duration, work func(func()), picked func(string)) *exitsSection {
	gs := ctl.Exits()
	if len(gs.Exits) == 0 {
		return nil
	}
	x := &exitsSection{ctl: ctl, path: path, rows: map[string]*exitRow{}, work: work, picked: picked, stop: make(chan struct{})}
	x.status = noteLabel()
	list := container.NewVBox()
	for _, e := range gs.Exits {
		name := e.Name
		r := &exitRow{state: widget.NewLabel("")}
		r.state.Wrapping = fyne.TextWrapWord
		test := widget.NewButton("Test now", func() { x.test(name) })
		r.use = widget.NewButton("Use", func() { x.use(name) })
		x.rows[name] = r
		title := widget.NewLabelWithStyle(fmt.Sprintf("%s (%s) %s", e.Name, e.Kind, e.URL), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		list.Add(container.NewBorder(nil, nil, nil, container.NewHBox(test, r.use), container.NewVBox(title, r.state)))
	}
	hint := noteLabel()
	hint.SetText(fmt.Sprintf("Policy in use: %s. Use picks the exit of the manual policy; edit the exits above and Apply.", gs.Policy))
	hint.Show()
	x.content = widget.NewCard("Exits in use", "", container.NewVBox(list, x.status, hint))
	x.show(gs)
	if refresh > 0 {
		x.wg.Add(1)
		go x.refresh(refresh)
	}
	return x
}

// run runs f as work says, counted for close.
func (x *exitsSection) run(f func()) {
	if x.work != nil {
		x.work(f)
		return
	}
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		f()
	}()
}

// show puts the exits' state in the rows. Fyne thread.
func (x *exitsSection) show(gs outbound.GroupState) {
	for _, e := range gs.Exits {
		r, ok := x.rows[e.Name]
		if !ok {
			continue
		}
		text := e.State.String()
		switch {
		case e.State == outbound.ExitUp && e.Latency > 0:
			text += " · " + roughLatency(e.Latency)
		case e.Err != nil:
			text = e.String()
		}
		if e.Active {
			text = "✓ in use · " + text
		}
		if r.tested != "" {
			text += " · " + r.tested
		}
		r.state.SetText(text)
		if gs.Policy == outbound.PolicyManual && !e.Selected {
			r.use.Enable()
		} else {
			r.use.Disable()
		}
	}
}

// refresh renews the rows every period until close.
func (x *exitsSection) refresh(period time.Duration) {
	defer x.wg.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-x.stop:
			return
		case <-t.C:
			gs := x.ctl.Exits()
			fyne.Do(func() { x.show(gs) })
		}
	}
}

// test measures one exit now, off the Fyne thread.
func (x *exitsSection) test(name string) {
	x.run(func() {
		ctx, cancel := context.WithTimeout(context.Background(), exitsTestTimeout)
		defer cancel()
		d, err := x.ctl.TestExit(ctx, name)
		result := "tested: " + roughLatency(d)
		if err != nil {
			result = "test failed: " + shortError(err, 60)
		}
		gs := x.ctl.Exits()
		fyne.Do(func() {
			if r, ok := x.rows[name]; ok {
				r.tested = result
			}
			x.show(gs)
		})
	})
}

// use makes name the manual pick (saved, taken at once).
func (x *exitsSection) use(name string) {
	x.save(func(c *config.Config) { c.ExitSelected = name }, func() {
		if x.picked != nil {
			x.picked(name)
		}
	})
}

// save saves change; then, on the Fyne thread, runs saved if it worked.
func (x *exitsSection) save(change func(*config.Config), saved func()) {
	x.run(func() {
		_, err := x.ctl.SaveSettings(x.path, change)
		gs := x.ctl.Exits()
		fyne.Do(func() {
			if err != nil {
				x.status.SetText("Not saved: " + err.Error())
				x.status.Show()
			} else {
				x.status.Hide()
				saved()
			}
			x.show(gs)
		})
	})
}

// close stops the refresher and waits for the work it started; it is
// idempotent. Not on the Fyne thread: the work ends with fyne.Do.
func (x *exitsSection) close() {
	x.stopOnce.Do(func() { close(x.stop) })
	x.wg.Wait()
}
