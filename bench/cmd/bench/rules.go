package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// Paths of the rules table.
const (
	pathRulesDirect = "rules_direct"
	pathRules100k   = "rules_100k"
	rulesCount      = 100_000
)

const rulesIntro = "Porthole in direct mode beside Porthole in rules mode with 100,000 rules " +
	"(Clash lines: suffixes, names, keywords, IPv4 and IPv6 prefixes, ports, none of which " +
	"the target meets, then `MATCH,DIRECT`), both asked for `localhost:PORT`, so every kind " +
	"of rule is looked up for every connection. Runs alternate between the two."

// runRules measures what the rule set costs a new connection.
func runRules(o options, rep *report) error {
	orig, err := startOrigin()
	if err != nil {
		return err
	}
	defer orig.Close()
	_, port, err := net.SplitHostPort(orig.addr())
	if err != nil {
		return err
	}
	target := "localhost:" + port // a name: the domain and keyword tables are looked up too
	var st stack
	defer st.stop(rep, "rules ")
	direct, err := startPorthole(o.bin, false)
	if err != nil {
		return err
	}
	st.addProc(direct)
	ruled, err := startPortholeRules(o.bin, rulesCount)
	if err != nil {
		return err
	}
	st.addProc(ruled)

	t := newTable(rep, "rules", "Rules mode: new connections with 100,000 rules",
		[]pathInfo{{pathRulesDirect, "porthole direct"}, {pathRules100k, "porthole rules (100,000)"}},
		[]ratioDef{{"rules_over_direct", "rules ÷ direct", pathRules100k, pathRulesDirect}})
	t.intro = rulesIntro
	paths := []path{
		{t.Paths[0], connectDialer(direct.addr, target), []*proc{direct}},
		{t.Paths[1], connectDialer(ruled.addr, target), []*proc{ruled}},
	}
	figs := func(key, name string) []*figure {
		return []*figure{
			t.fig(key+"_per_sec", name+": rate", "conn/s", "%.0f", true),
			t.fig(key+"_p50_ms", name+": latency p50", "ms", "%.3f", false),
			t.fig(key+"_p99_ms", name+": latency p99", "ms", "%.3f", false),
		}
	}
	three := func(a, b, c float64, err error) ([]float64, error) { return []float64{a, b, c}, err }
	for _, e := range []experiment{
		{
			name:    "rules: sequential connections",
			figures: figs("seq_conn", fmt.Sprintf("%s sequential connections", thousands(o.seqConns))),
			run:     func(p path) ([]float64, error) { return three(connRate(p.dial, o.seqConns, 1)) },
		},
		{
			name:    "rules: concurrent connections",
			figures: figs("conc_conn", fmt.Sprintf("%s connections, %d workers", thousands(o.concConns), concWorkers)),
			run:     func(p path) ([]float64, error) { return three(connRate(p.dial, o.concConns, concWorkers)) },
		},
	} {
		runExperiment(e, paths, o.runs)
	}
	return nil
}

// startPortholeRules starts `porthole --headless --mode rules` with n
// generated rules in a rules file and an empty bypass list.
func startPortholeRules(bin string, n int) (*proc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgDir, err := portholeDir("porthole-bench-rules-", map[string]string{
		"rules.list":  benchRules(n),
		"config.json": fmt.Sprintf(`{"max_conns": %d, "bypass": []}`+"\n", idleMaxStream),
	})
	if err != nil {
		return nil, err
	}
	rulesFile := filepath.Join(cfgDir, "rules.list")
	cfg := filepath.Join(cfgDir, "config.json")
	return startProc(procSpec{
		name: "porthole-rules",
		bin:  bin,
		args: []string{"--headless", "--config", cfg, "--listen", addr, "--mode", "rules", "--rules", rulesFile, "--log-level", "warn"},
		env:  []string{"XDG_CONFIG_HOME=" + cfgDir},
		addr: addr,
		dir:  cfgDir,
	})
}

// benchRules is n Clash rule lines of the kinds real lists hold, none of
// which matches localhost or 127.0.0.1, then MATCH,DIRECT.
func benchRules(n int) string {
	var b strings.Builder
	// No PROXY: the bench runs without an exit, and rules mode refuses
	// rules that would tunnel with none (matching costs the same).
	actions := []string{"DIRECT", "REJECT"}
	for i := 0; i < n-1; i++ {
		a := actions[i%2]
		switch i % 20 {
		case 0, 1, 2, 3, 4, 5, 6, 7, 8, 9:
			fmt.Fprintf(&b, "DOMAIN-SUFFIX,site%d.example,%s\n", i, a)
		case 10, 11, 12, 13:
			fmt.Fprintf(&b, "DOMAIN,www.host%d.test,%s\n", i, a)
		case 14:
			fmt.Fprintf(&b, "DOMAIN-KEYWORD,kw%dx,%s\n", i, a)
		case 15, 16, 17:
			fmt.Fprintf(&b, "IP-CIDR,%d.%d.%d.0/24,%s,no-resolve\n", 1+i%120, (i/120)%256, (i/30720)%256, a)
		case 18:
			fmt.Fprintf(&b, "IP-CIDR6,2001:db8:%x::/48,%s,no-resolve\n", i%65536, a)
		default:
			fmt.Fprintf(&b, "DST-PORT,%d,%s\n", 1+i%1000, a)
		}
	}
	b.WriteString("MATCH,DIRECT\n")
	return b.String()
}
