package ui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"porthole/core/outbound"
	"porthole/core/registry"
)

func exitsState(policy outbound.Policy, active string, exits ...outbound.ExitStatus) outbound.GroupState {
	for i := range exits {
		exits[i].Active = exits[i].Name == active
	}
	return outbound.GroupState{Policy: policy, Active: active, Exits: exits}
}

func TestExitsViewOf(t *testing.T) {
	if v := exitsViewOf(outbound.GroupState{}); v.Label != "" || v.N != 0 {
		t.Errorf("no exits: %+v", v)
	}
	gs := exitsState(outbound.PolicyManual, "home",
		outbound.ExitStatus{Name: "home", State: outbound.ExitUp, Latency: 12300 * time.Microsecond},
		outbound.ExitStatus{Name: "office", State: outbound.ExitAuthFailed})
	v := exitsViewOf(gs)
	if v.Label != "Exit: home" || v.N != 2 {
		t.Fatalf("view %+v", v)
	}
	if it := v.Items[0]; it.Label != "home · connected · 10 ms" || !it.Checked || it.Disabled {
		t.Errorf("first item %+v", it)
	}
	if it := v.Items[1]; it.Label != "office · authentication failed" || it.Checked {
		t.Errorf("second item %+v", it)
	}
	// A latency moving by a millisecond does not change what is shown.
	gs.Exits[0].Latency = 11800 * time.Microsecond
	if exitsViewOf(gs) != v {
		t.Errorf("a 0.5 ms change redraws the menu")
	}
	gs.Policy, gs.Active = outbound.PolicyFailover, ""
	gs.Exits[0].Active = false
	if v := exitsViewOf(gs); v.Label != "Exit: none usable (failover)" || !v.Items[0].Disabled {
		t.Errorf("failover without a usable exit: %+v", v)
	}
}

func TestExitNotices(t *testing.T) {
	lost := map[string]bool{}
	up := func(name string) outbound.ExitStatus {
		return outbound.ExitStatus{Name: name, State: outbound.ExitUp}
	}
	down := outbound.ExitStatus{Name: "home", State: outbound.ExitDown, Err: errors.New("connection refused")}
	both := exitsState(outbound.PolicyFailover, "home", up("home"), up("office"))
	if n := exitNotices(both, both, lost); len(n) != 0 {
		t.Errorf("no change: %v", n)
	}
	failed := exitsState(outbound.PolicyFailover, "office", down, up("office"))
	n := exitNotices(both, failed, lost)
	if len(n) != 1 || n[0].Title != "Exit home lost; using office" || n[0].Body != "connection refused" {
		t.Errorf("home lost: %v", n)
	}
	if n := exitNotices(failed, failed, lost); len(n) != 0 {
		t.Errorf("still down: %v", n)
	}
	n = exitNotices(failed, both, lost)
	if len(n) != 1 || n[0].Title != "Exit home is back" {
		t.Errorf("home back: %v", n)
	}
	// Stopping the proxy is not losing an exit.
	stopped := exitsState(outbound.PolicyFailover, "",
		outbound.ExitStatus{Name: "home", State: outbound.ExitStopped}, outbound.ExitStatus{Name: "office", State: outbound.ExitStopped})
	if n := exitNotices(both, stopped, lost); len(n) != 0 {
		t.Errorf("stopped: %v", n)
	}
}

func TestFilterExit(t *testing.T) {
	home := newConnRow(registry.Info{Meta: registry.Meta{Target: "a.example:443", Route: registry.RouteTunnel}, Exit: "home-vps"})
	direct := newConnRow(registry.Info{Meta: registry.Meta{Target: "b.example:443", Route: registry.RouteDirect}})
	for _, tc := range []struct {
		filter     string
		home, dire bool
	}{
		{"exit:home", true, false},
		{"exit:HOME-vps", true, false},
		{"exit:office", false, false},
		{"-exit:home", false, true},
	} {
		f := parseFilter(tc.filter)
		if f.match(home) != tc.home || f.match(direct) != tc.dire {
			t.Errorf("%q: home %v, direct %v", tc.filter, f.match(home), f.match(direct))
		}
	}
	if got := columns[colExit].text(home, time.Now()); got != "home-vps" {
		t.Errorf("exit column: %q", got)
	}
	if d := detailsText(home, time.Now()); !strings.Contains(d, "Exit         home-vps") {
		t.Errorf("details:\n%s", d)
	}
}
