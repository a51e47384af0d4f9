package ui

import (
	"fmt"
	"time"

	"porthole/app/config"
	"porthole/core/outbound"
)

// maxTrayExits is how many exits the tray's Exits submenu lists; more are
// in Settings. A fixed array keeps controlsView comparable.
const maxTrayExits = 8

// exitItem is one line of the tray's Exits submenu.
type exitItem struct {
	Name    string
	Label   string // "home · connected · 12 ms"
	Checked bool   // the exit in use
	// Disabled: a click would do nothing (the policy is not manual).
	Disabled bool
}

// exitsView is the Exits submenu: its label and items.
type exitsView struct {
	Label string // "Exit: home" ("" hides the submenu: no exits)
	Items [maxTrayExits]exitItem
	N     int
}

// exitsViewOf is the submenu for the exits' state. Latencies are rounded
// coarsely: the menu is rebuilt only when what it shows changes, and a
// latency that moves by a millisecond each second would rebuild it each
// second.
func exitsViewOf(gs outbound.GroupState) exitsView {
	var v exitsView
	if len(gs.Exits) == 0 {
		return v
	}
	switch {
	case gs.Active != "":
		v.Label = "Exit: " + gs.Active
	case gs.Exits[0].State == outbound.ExitStopped:
		v.Label = "Exits"
	default:
		v.Label = "Exit: none usable"
	}
	if gs.Policy != outbound.PolicyManual && gs.Policy != "" {
		v.Label += " (" + string(gs.Policy) + ")"
	}
	for i, x := range gs.Exits {
		if i == maxTrayExits {
			break
		}
		label := x.Name + " · " + x.State.String()
		if x.State == outbound.ExitUp && x.Latency > 0 {
			label += " · " + roughLatency(x.Latency)
		}
		v.Items[i] = exitItem{Name: x.Name, Label: label, Checked: x.Active,
			Disabled: gs.Policy != outbound.PolicyManual}
		v.N++
	}
	return v
}

// roughLatency rounds a latency for the menu: to the millisecond below
// 10 ms, to 5 ms below 100 ms, to 10 ms above.
func roughLatency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 1:
		return "<1 ms"
	case ms < 10:
		return fmt.Sprintf("%.0f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.0f ms", 5*float64(int(ms/5+0.5)))
	}
	return fmt.Sprintf("%.0f ms", 10*float64(int(ms/10+0.5)))
}

// exitNotice is a desktop notification about the exits.
type exitNotice struct{ Title, Body string }

// exitNotices compares two states of the exits: the exit in use lost
// ("Exit home lost; using office"), and a lost one back. lost remembers
// the exits lost so far (the caller keeps it between calls).
func exitNotices(prev, cur outbound.GroupState, lost map[string]bool) []exitNotice {
	var out []exitNotice
	byName := func(gs outbound.GroupState, name string) (outbound.ExitStatus, bool) {
		for _, x := range gs.Exits {
			if x.Name == name {
				return x, true
			}
		}
		return outbound.ExitStatus{}, false
	}
	if was := prev.Active; was != "" && cur.Active != was {
		x, ok := byName(cur, was)
		if ok && (x.State == outbound.ExitDown || x.State == outbound.ExitAuthFailed) {
			lost[was] = true
			n := exitNotice{Title: "Exit " + was + " lost"}
			if cur.Active != "" {
				n.Title += "; using " + cur.Active
			}
			if x.Err != nil {
				n.Body = x.Err.Error()
			}
			out = append(out, n)
		}
	}
	for name := range lost {
		x, ok := byName(cur, name)
		switch {
		case !ok || x.State == outbound.ExitStopped:
			delete(lost, name) // the proxy stopped or the exit is gone
		case x.State == outbound.ExitUp:
			delete(lost, name)
			n := exitNotice{Title: "Exit " + name + " is back"}
			if cur.Active == name {
				n.Body = "New connections use it again."
			}
			out = append(out, n)
		}
	}
	return out
}

// selectExit makes name the manual pick (saved as exit_selected); the
// running proxy takes it at once.
func (g *gui) selectExit(name string) {
	g.do("select exit", func() {
		g.saveConfig("selecting the exit", func(c *config.Config) { c.ExitSelected = name })
	})
}
