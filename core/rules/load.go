package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Source is a loaded rule list with the providers its rule-set rules
// refer to, ready for Compile (Options.Providers).
type Source struct {
	Rules     []Rule
	Providers map[string][]Rule
	// Files are the files read (the rules file and its providers), for a
	// caller that watches them for changes.
	Files []string

	behaviors map[string]string // rule-providers' behavior by name
}

// ParseJSON reads Porthole's rule JSON: a list of rules, or an object with
// a "rules" list. Unknown fields are errors (a typo must not silently drop
// a condition).
func ParseJSON(data []byte) ([]Rule, error) {
	data = bytes.TrimSpace(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var list []Rule
	if len(data) > 0 && data[0] == '{' {
		var doc struct {
			Rules []Rule `json:"rules"`
		}
		if err := dec.Decode(&doc); err != nil {
			return nil, jsonError(data, err)
		}
		list = doc.Rules
	} else if err := dec.Decode(&list); err != nil {
		return nil, jsonError(data, err)
	}
	if dec.More() {
		return nil, errors.New("rules JSON: data after the list")
	}
	var errs []error
	out := list[:0:0]
	for i, r := range list {
		n, err := r.Normalize()
		if err != nil {
			errs = append(errs, &RuleError{Index: i, Rule: r, Err: err})
			continue
		}
		out = append(out, n)
	}
	return out, errors.Join(errs...)
}

// jsonError places a JSON error on its line, where encoding/json says
// where (a syntax error, a value of the wrong type).
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &LineError{Line: lineAt(data, syn.Offset), Field: "line", Err: fmt.Errorf("rules JSON: %w", err)}
	case errors.As(err, &typ):
		return &LineError{Line: lineAt(data, typ.Offset), Field: typ.Field, Value: typ.Value, Err: fmt.Errorf("rules JSON: %w", err)}
	}
	return fmt.Errorf("rules JSON: %w", err)
}

func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

// LoadFile reads a rules file: Porthole's JSON, Clash rule lines (plain or
// a YAML list), a Clash config's rules: and rule-providers: sections, or a
// provider file alone (which becomes a provider named after the file, for
// the config's rules to use with a rule-set rule). Rule-set rules find
// their provider in rule-providers, in their "path", or in a file named
// after them beside the rules file (NAME, NAME.yaml, NAME.yml, NAME.txt,
// NAME.list). The error joins every problem, by line where there is one;
// the Source holds what could be read, and the caller decides.
func LoadFile(path string) (*Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	src, err := Parse(data, filepath.Base(path))
	src.Files = append(src.Files, path)
	if lerr := src.LoadProviders(filepath.Dir(path)); lerr != nil {
		err = errors.Join(err, lerr)
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return src, err
}

// Parse reads a rules file's content (see LoadFile); name is the file's
// name, which names a provider file read alone.
func Parse(data []byte, name string) (*Source, error) {
	src := &Source{Providers: map[string][]Rule{}}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{'):
		r, err := ParseJSON(trimmed)
		src.Rules = r
		return src, err
	case isYAMLPayload(data):
		p, err := ParseProvider(data, "")
		src.Providers[providerName(name)] = p
		return src, err
	case isClashConfig(data):
		return parseClashConfig(data, src)
	case looksLikeProvider(data):
		p, err := ParseProvider(data, "")
		src.Providers[providerName(name)] = p
		return src, err
	}
	r, err := ParseClash(data)
	src.Rules = r
	return src, err
}

func providerName(file string) string {
	return strings.TrimSuffix(file, filepath.Ext(file))
}

// looksLikeProvider: plain text whose first entry has no comma (a name or
// a prefix, not a rule line).
func looksLikeProvider(data []byte) bool {
	for line := range bytes.Lines(data) {
		t := cleanLine(string(line))
		if t == "" {
			continue
		}
		return !strings.Contains(t, ",")
	}
	return false
}

func isClashConfig(data []byte) bool {
	for line := range bytes.Lines(data) {
		if bytes.HasPrefix(line, []byte("rules:")) || bytes.HasPrefix(line, []byte("rule-providers:")) {
			return true
		}
	}
	return false
}

type clashProvider struct {
	Behavior string `yaml:"behavior"`
	Path     string `yaml:"path"`
	Type     string `yaml:"type"`
}

func parseClashConfig(data []byte, src *Source) (*Source, error) {
	var doc struct {
		Rules     yaml.Node                `yaml:"rules"`
		Providers map[string]clashProvider `yaml:"rule-providers"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return src, fmt.Errorf("clash config: %w", err)
	}
	var errs []error
	for _, n := range doc.Rules.Content {
		if n.Kind != yaml.ScalarNode {
			errs = append(errs, &LineError{Line: n.Line, Field: "rules", Err: errors.New("an entry is not a string")})
			continue
		}
		r, err := ParseClashLine(n.Value)
		if err != nil {
			errs = append(errs, atLine(err, n.Line))
			continue
		}
		src.Rules = append(src.Rules, r)
	}
	for name, p := range doc.Providers {
		if p.Path == "" {
			errs = append(errs, fmt.Errorf("rule-providers %q: no path (Porthole reads providers from files only)", name))
			continue
		}
		for i := range src.Rules {
			if src.Rules[i].Kind == KindRuleSet && src.Rules[i].Value == name && src.Rules[i].Path == "" {
				src.Rules[i].Path = p.Path
			}
		}
		src.pendingBehavior(name, p.Behavior)
	}
	return src, errors.Join(errs...)
}

var errNoProvider = errors.New("no provider file found")

// pendingBehavior remembers a rule-provider's behavior until LoadProviders.
func (s *Source) pendingBehavior(name, b string) {
	if s.behaviors == nil {
		s.behaviors = map[string]string{}
	}
	s.behaviors[name] = b
}

// LoadProviders reads, relative to dir, the provider files of the rule-set
// rules that no provider has yet.
func (s *Source) LoadProviders(dir string) error {
	if s.Providers == nil {
		s.Providers = map[string][]Rule{}
	}
	var errs []error
	for _, r := range s.Rules {
		if r.Kind != KindRuleSet {
			continue
		}
		if _, ok := s.Providers[r.Value]; ok {
			continue
		}
		file, err := ProviderPath(dir, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule-set %q: %w", r.Value, err))
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule-set %q: %w", r.Value, err))
			continue
		}
		s.Files = append(s.Files, file)
		p, err := ParseProvider(data, s.behaviors[r.Value])
		s.Providers[r.Value] = p
		if err != nil {
			errs = append(errs, fmt.Errorf("rule-set %q (%s): %w", r.Value, file, err))
		}
	}
	return errors.Join(errs...)
}

// ProviderPath is the provider file of rule-set rule r for a rules file in
// dir: its Path (relative to dir), or the file named after it there.
func ProviderPath(dir string, r Rule) (string, error) {
	if r.Path != "" {
		p := r.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return p, nil
	}
	if strings.ContainsAny(r.Value, `/\`) || r.Value == ".." {
		return "", errors.New("a provider's name is not a path; give the path in the rule")
	}
	for _, ext := range []string{"", ".yaml", ".yml", ".txt", ".list"} {
		p := filepath.Join(dir, r.Value+ext)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w beside the rules file (%s{,.yaml,.yml,.txt,.list})", errNoProvider, r.Value)
}
