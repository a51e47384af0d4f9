package registry

import "testing"

func TestRuleString(t *testing.T) {
	for r, want := range map[Rule]string{
		{}: "",
		{Index: 2, Kind: "domain-suffix", Payload: "example.com", Action: "direct"}: "#3 domain-suffix example.com → direct",
		{Index: 0, Kind: "match", Action: "tunnel:home"}:                            "#1 match → tunnel:home",
		{Index: -1, Kind: "mode", Payload: "tunnel", Action: "tunnel"}:              "mode: tunnel",
		{Index: -1, Kind: "bypass", Action: "direct"}:                               "bypass → direct",
		{Index: -1, Kind: "default", Action: "reject"}:                              "default → reject",
	} {
		if got := r.String(); got != want {
			t.Errorf("%+v: %q, want %q", r, got, want)
		}
	}
	if RouteReject.String() != "reject" {
		t.Errorf("RouteReject: %q", RouteReject)
	}
}
