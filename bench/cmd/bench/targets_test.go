package main

import "testing"

// The rules-mode and attribution targets are ratios of two paths of their
// own tables, judged and worded as the loopback ratios are.
func TestTargetsOfOwnTables(t *testing.T) {
	fig := func(key string, sides map[string]float64) *figure {
		f := &figure{Key: key}
		for path, v := range sides {
			f.Sides = append(f.Sides, &side{Path: path, Samples: []float64{v}, Median: v})
		}
		return f
	}
	r := &report{Tables: []*table{
		{Key: "rules", Figures: []*figure{fig("seq_conn_per_sec", map[string]float64{pathRules100k: 960, pathRulesDirect: 1000})}},
		{Key: "attribution", Figures: []*figure{
			fig("attr_seq_conn_per_sec", map[string]float64{pathAttrOn: 900, pathAttrOff: 1000}),
			fig("attr_conc_conn_per_sec", map[string]float64{pathAttrOn: 5000, pathAttrOff: 5000}),
		}},
	}}
	r.evalTargets(50)
	want := map[string]target{
		"New connections/s in rules mode with 100,000 rules ≥ 0.95× direct mode": {Measured: "0.96× (960 vs 1000 conn/s)", Status: targetMet},
		"New connections/s with attribution on ≥ 0.95× off (sequential)":         {Measured: "0.90× (900 vs 1000 conn/s)", Status: targetMissed},
		"New connections/s with attribution on ≥ 0.95× off (32 workers)":         {Measured: "1.00× (5000 vs 5000 conn/s)", Status: targetMet},
	}
	for _, got := range r.Targets {
		w, ok := want[got.Goal]
		if !ok {
			continue
		}
		delete(want, got.Goal)
		if got.Measured != w.Measured || got.Status != w.Status {
			t.Errorf("%s: %q %s, want %q %s", got.Goal, got.Measured, got.Status, w.Measured, w.Status)
		}
	}
	for goal := range want {
		t.Errorf("no target %q", goal)
	}
}
