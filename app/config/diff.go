package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Effect is what a changed setting takes while Porthole runs. A field's
// effects are its apply struct tag, so a new field cannot be added without
// saying what changing it needs (fields panics on a missing or unknown tag,
// and the package's tests construct it).
type Effect uint8

const (
	// EffectRestart: the running engine is rebuilt (it reads the field
	// only when it is built). Restarting also sets the system proxy again.
	EffectRestart Effect = 1 << iota
	// EffectSystemProxy: the system proxy is set again, or on or off.
	EffectSystemProxy
	// EffectNextLaunch: read once at launch; the change is saved and
	// applies at the next launch.
	EffectNextLaunch
	// EffectAutostart: the login entry, which the desktop app keeps in
	// step with the field.
	EffectAutostart
	// EffectRules: the rule set is compiled again and swapped into the
	// running engine; open connections keep their route.
	EffectRules
	// EffectSelectExit: the running engine takes the new manual pick of
	// an exit at once, without a restart.
	EffectSelectExit
	// EffectAPI: the control API's server is restarted; the proxy is not.
	EffectAPI
)

// effectNames are the apply tag's words; "none" is a field whose change
// needs nothing now (it is only read at launch, by its nature).
var effectNames = map[string]Effect{
	"restart":      EffectRestart,
	"system_proxy": EffectSystemProxy,
	"next_launch":  EffectNextLaunch,
	"autostart":    EffectAutostart,
	"rules":        EffectRules,
	"select_exit":  EffectSelectExit,
	"api":          EffectAPI,
	"none":         0,
}

// field is one Config field as the file names it, with its effects.
type field struct {
	index   int
	name    string // the JSON name
	effects Effect
}

// fields is every Config field in file order, read from the struct tags
// once.
var fields = func() []field {
	t := reflect.TypeFor[Config]()
	out := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			panic(fmt.Sprintf("config: field %s has no JSON name", f.Name))
		}
		tag, ok := f.Tag.Lookup("apply")
		if !ok {
			panic(fmt.Sprintf("config: field %s has no apply tag: say what changing it takes", f.Name))
		}
		var effects Effect
		for word := range strings.SplitSeq(tag, ",") {
			e, ok := effectNames[word]
			if !ok {
				panic(fmt.Sprintf("config: field %s: unknown apply word %q", f.Name, word))
			}
			effects |= e
		}
		out = append(out, field{index: i, name: name, effects: effects})
	}
	return out
}()

// Changes is what differs between two configs.
type Changes struct {
	Fields  []string // JSON names of the fields that differ, in file order
	Effects Effect   // the union of their effects
}

// Need reports whether the changes take e.
func (c Changes) Need(e Effect) bool { return c.Effects&e != 0 }

// Has reports whether the field named name (its JSON name) changed.
func (c Changes) Has(name string) bool { return slices.Contains(c.Fields, name) }

// Diff says which fields differ from old to new and what applying new
// over old takes. An empty list and a missing one are the same list.
func Diff(old, new Config) Changes {
	a, b := reflect.ValueOf(old), reflect.ValueOf(new)
	var c Changes
	for _, f := range fields {
		if !sameValue(a.Field(f.index), b.Field(f.index)) {
			c.Fields = append(c.Fields, f.name)
			c.Effects |= f.effects
		}
	}
	return c
}

func sameValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true // nil and [] are both "none" in the file
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
