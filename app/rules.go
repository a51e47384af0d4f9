package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"strconv"
	"time"

	"porthole/app/config"
	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/rules"
)

// rulesPoll is how often a running proxy looks at its rules files for a
// change: a stat each, cheap enough to need no file-watch machinery.
const rulesPoll = time.Second

// CompileRules compiles the rules of cfg: its own rules first, then the
// rules file's (which may also bring the providers the config's rule-set
// rules name). files are the files read, for a watcher. Any error refuses
// the whole set: a rule list is never applied with parts silently missing.
// In rules mode without an exit, rules that would tunnel are an error too
// (config.CheckRulesExit).
func CompileRules(cfg config.Config) (set *rules.Set, files []string, err error) {
	return compileRules(cfg, true)
}

// compileRules is CompileRules; needExit false leaves out the check of an
// exit for the rules that tunnel (a router that only decides needs none).
func compileRules(cfg config.Config, needExit bool) (set *rules.Set, files []string, err error) {
	list := append([]rules.Rule(nil), cfg.Rules...)
	providers := map[string][]rules.Rule{}
	var errs []error
	if cfg.RulesFile != "" {
		src, err := rules.LoadFile(cfg.RulesFile)
		if src != nil {
			list = append(list, src.Rules...)
			providers = src.Providers
			files = src.Files
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rules_file: %w", err))
		}
		// The config's rule-set rules find their files beside the rules
		// file too; LoadProviders skips the ones the file brought.
		if src != nil {
			own := &rules.Source{Rules: cfg.Rules, Providers: providers}
			if perr := own.LoadProviders(dirOf(cfg.RulesFile)); perr != nil {
				errs = append(errs, fmt.Errorf("rules: %w", perr))
			}
			files = append(files, own.Files...)
		}
	} else if len(cfg.Rules) > 0 {
		own := &rules.Source{Rules: cfg.Rules, Providers: providers}
		if perr := own.LoadProviders("."); perr != nil {
			errs = append(errs, fmt.Errorf("rules: %w", perr))
		}
		files = own.Files
	}
	if i, name := cfg.UnknownRuleExit(list[len(cfg.Rules):]); i >= 0 {
		errs = append(errs, fmt.Errorf("rules_file: rule %d: exit %q is not one of the config's exits", i+1, name))
	}
	if needExit && cfg.Mode == string(outbound.ModeRules) && len(errs) == 0 {
		// Validate checked the config's own rules; the file's, and the
		// default after them, are known only now (and only when the file was
		// read whole).
		if err := cfg.CheckRulesExit(list[len(cfg.Rules):], true); err != nil {
			errs = append(errs, err)
		}
	}
	set, err = rules.Compile(list, rules.Options{Providers: providers})
	if err != nil {
		errs = append(errs, fmt.Errorf("rules: %w", err))
	}
	if len(errs) > 0 {
		return nil, files, errors.Join(errs...)
	}
	return set, files, nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:i+1]
		}
	}
	return "."
}

// RulesView is what the rules editor and the API show: the bypass list
// (read first, as direct rules), the compiled rules, where they came from.
type RulesView struct {
	Mode     outbound.Mode
	Bypass   []string
	Rules    []rules.Rule // normalised; the config's first, then the file's
	File     string
	Entries  int    // matchers compiled, provider entries included
	Default  string // the action when nothing matches
	Problems error  // why the settings' rules do not compile (the proxy keeps the last good set)
}

// Rules is the rule list of the settings in use: the running engine's set
// when the proxy runs, else compiled from the settings.
func (c *Controller) Rules() RulesView {
	c.mu.Lock()
	cfg, eng := c.cfg, c.eng
	c.mu.Unlock()
	v := RulesView{Mode: outbound.Mode(cfg.Mode), Bypass: cfg.Bypass, File: cfg.RulesFile}
	var set *rules.Set
	if eng != nil {
		set = eng.Rules()
	} else {
		set, _, v.Problems = CompileRules(cfg)
	}
	if set != nil {
		v.Rules, v.Entries, v.Default = set.Rules(), set.Entries(), set.Default().Rule.Action
	}
	return v
}

// RuleTest is the answer of TestRule.
type RuleTest struct {
	Decision outbound.Decision
	// Why is one line for a person: which rule matched, or that none did.
	Why string
}

// TestRule says where a connection to target (host:port) from program
// (a name or path; "" for any) would go under the settings in use, and
// which rule decides. It uses the running proxy's rules, or the settings'
// when stopped; it never connects anywhere (an ip-cidr rule that resolves
// looks the name up, as the proxy would).
func (c *Controller) TestRule(ctx context.Context, target, program string) (RuleTest, error) {
	host, port, err := outbound.SplitTarget(target)
	if err != nil {
		return RuleTest{}, err
	}
	c.mu.Lock()
	cfg, eng := c.cfg, c.eng
	c.mu.Unlock()
	if eng == nil {
		return TestRuleIn(ctx, cfg, target, program)
	}
	q := rules.Query{Host: host, Port: port, Inbound: registry.ProtoConnect}
	if program != "" {
		q.Program = namedProgram(program)
	}
	return explain(eng.Decide(ctx, &q)), nil
}

// TestRuleIn is TestRule under the settings cfg (the rules editor tests
// the rules being edited, before they are applied).
func TestRuleIn(ctx context.Context, cfg config.Config, target, program string) (RuleTest, error) {
	host, port, err := outbound.SplitTarget(target)
	if err != nil {
		return RuleTest{}, err
	}
	q := rules.Query{Host: host, Port: port, Inbound: registry.ProtoConnect}
	if program != "" {
		q.Program = namedProgram(program)
	}
	r, err := testRouter(cfg)
	if err != nil {
		return RuleTest{}, err
	}
	return explain(r.Decide(ctx, &q)), nil
}

func explain(d outbound.Decision) RuleTest {
	t := RuleTest{Decision: d}
	switch {
	case d.Rule.Kind == "mode":
		t.Why = "the mode decides: " + d.Route.String() + " (rules apply in rules mode)"
	case d.Rule.Kind == "bypass":
		t.Why = "on the bypass list: direct"
	case d.Rule.Index < 0:
		t.Why = "no rule matches: the default, " + d.Rule.Action
	default:
		t.Why = "rule " + strconv.Itoa(d.Rule.Index+1) + " matches: " + d.Rule.String()
	}
	return t
}

func testRouter(cfg config.Config) (*outbound.Router, error) {
	mode, err := outbound.ParseMode(cfg.Mode)
	if err != nil {
		return nil, err
	}
	bl := cfg.Bypass
	if bl == nil {
		bl = outbound.DefaultBypass
	}
	b, err := outbound.ParseBypass(bl)
	if err != nil {
		return nil, err
	}
	r, err := outbound.NewRouter(mode, b, outbound.NewDirect(0, nil), testTunnel{})
	if err != nil {
		return nil, err
	}
	if mode == outbound.ModeRules {
		set, _, err := compileRules(cfg, false) // where a rule would send it, exit or not
		if err != nil {
			return nil, err
		}
		r.SetRules(set)
	}
	return r, nil
}

// testTunnel stands for the tunnel in a router that only decides.
type testTunnel struct{}

func (testTunnel) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, outbound.ErrTunnelStopped
}

// namedProgram is a program given by name in the test box. PID 1 only
// marks it known; nothing looks at it.
type namedProgram string

func (p namedProgram) Wait(context.Context) (*registry.Process, bool) {
	name, path := string(p), ""
	for i := len(name) - 1; i >= 0; i-- {
		if os.IsPathSeparator(name[i]) {
			name, path = name[i+1:], string(p)
			break
		}
	}
	return &registry.Process{PID: 1, Name: name, Path: path}, true
}

// rulesWatcher polls the rules files of a running engine once a second
// and swaps in the rules compiled from them when one changes. A change
// that does not compile is logged and leaves the last good set in use.
//
// Concurrency: the controller starts it (startRulesWatchOps) and stops it
// (stopRulesWatchOps) under ops; stop waits for its goroutine.
type rulesWatcher struct {
	stop chan struct{}
	done chan struct{}
}

type fileStamp struct {
	size    int64
	mod     time.Time
	missing bool
}

func stampFiles(files []string) map[string]fileStamp {
	m := make(map[string]fileStamp, len(files))
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			m[f] = fileStamp{missing: true}
			continue
		}
		m[f] = fileStamp{size: st.Size(), mod: st.ModTime()}
	}
	return m
}

// startRulesWatchOps watches files for eng (rules mode with files only).
func (c *Controller) startRulesWatchOps(eng *core.Engine, cfg config.Config, files []string) {
	c.stopRulesWatchOps()
	c.update(func() { c.rulesErr = nil }) // the rules were just compiled whole
	if cfg.Mode != string(outbound.ModeRules) || len(files) == 0 {
		return
	}
	w := &rulesWatcher{stop: make(chan struct{}), done: make(chan struct{})}
	c.mu.Lock()
	c.rulesWatch = w
	c.mu.Unlock()
	go func() {
		defer close(w.done)
		stamps := stampFiles(files)
		tick := time.NewTicker(rulesPoll)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			now := stampFiles(files)
			if maps.Equal(now, stamps) {
				continue
			}
			stamps = now
			set, newFiles, err := CompileRules(cfg)
			if err != nil {
				c.log.Warn("the rules file changed but cannot be used; keeping the rules in use", "file", cfg.RulesFile, "err", err)
				c.update(func() { c.rulesErr = err })
				continue
			}
			eng.SetRules(set)
			c.update(func() { c.rulesErr = nil })
			c.log.Info("rules reloaded", "file", cfg.RulesFile, "rules", set.Len(), "entries", set.Entries())
			if len(newFiles) != len(files) {
				files = newFiles
				stamps = stampFiles(files)
			}
		}
	}()
}

// stopRulesWatchOps stops the watcher, if any, and waits for it.
func (c *Controller) stopRulesWatchOps() {
	c.mu.Lock()
	w := c.rulesWatch
	c.rulesWatch = nil
	c.mu.Unlock()
	if w != nil {
		close(w.stop)
		<-w.done
	}
}

// applyRulesOps compiles cfg's rules and swaps them into the running
// engine (a change of rules or rules_file, which needs no restart).
func (c *Controller) applyRulesOps(cfg config.Config) error {
	c.mu.Lock()
	eng := c.eng
	c.mu.Unlock()
	if eng == nil {
		return nil
	}
	set, files, err := CompileRules(cfg)
	if err != nil {
		return err // SaveSettings checked them; the file changed since
	}
	eng.SetRules(set)
	c.log.Info("rules applied", "rules", set.Len(), "entries", set.Entries())
	c.startRulesWatchOps(eng, cfg, files)
	return nil
}
