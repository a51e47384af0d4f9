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

// exitsSection is the Settings window's list of exits: each one's state
// and latency, renewed each second while the window is open, a Test now
// button, a Use button (the manual pick, taken at once), and the policy.
// The list itself is edited in the config file ("exits"; the README shows
// it).
//
// Concurrency: built and changed on the Fyne thread; its refresher
// goroutine and the buttons' work only reach the widgets through fyne.Do.
// close stops the refresher and waits for it; it is idempotent.
type exitsSection struct {
	ctl  *app.Controller
	path string

	content fyne.CanvasObject
	policy  *widget.Select
	rows    map[string]*exitRow
	status  *widget.Label

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
func newExitsSection(ctl *app.Controller, path string, refresh time.Duration, work func(func())) *exitsSection {
	gs := ctl.Exits()
	if len(gs.Exits) == 0 {
		return nil
	}
	x := &exitsSection{ctl: ctl, path: path, rows: map[string]*exitRow{}, work: work, stop: make(chan struct{})}
	x.status = noteLabel()
	x.policy = widget.NewSelect(exitPolicies, nil)
	x.policy.SetSelected(string(gs.Policy))
	x.policy.OnChanged = func(p string) { x.setPolicy(p) }
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
	hint.SetText("Add, remove and edit exits in the config file (\"exits\"). Use picks the exit of the manual policy.")
	hint.Show()
	x.content = widget.NewCard("Exits", "", container.NewVBox(
		widget.NewForm(widget.NewFormItem("Policy", x.policy)), list, x.status, hint))
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
	x.save(func(c *config.Config) { c.ExitSelected = name })
}

// setPolicy saves a new policy; the proxy restarts with it.
func (x *exitsSection) setPolicy(p string) {
	if p == x.ctl.Config().ExitPolicy || p == string(outbound.PolicyFailover) && x.ctl.Config().ExitPolicy == "" {
		return
	}
	x.save(func(c *config.Config) { c.ExitPolicy = p })
}

func (x *exitsSection) save(change func(*config.Config)) {
	x.run(func() {
		_, err := x.ctl.SaveSettings(x.path, change)
		gs := x.ctl.Exits()
		fyne.Do(func() {
			if err != nil {
				x.status.SetText("Not saved: " + err.Error())
				x.status.Show()
			} else {
				x.status.Hide()
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
