package config

import (
	"reflect"
	"slices"
	"testing"
)

// TestDiffClassifiesEveryField changes each Config field alone, found by
// reflection, so a field added later is covered without editing the test:
// Diff must name exactly that field, with its tag's effects.
func TestDiffClassifiesEveryField(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	if len(fields) != typ.NumField() {
		t.Fatalf("%d classified fields, Config has %d", len(fields), typ.NumField())
	}
	base := Default()
	for i := range typ.NumField() {
		changed := base
		v := reflect.ValueOf(&changed).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int:
			v.SetInt(v.Int() + 1)
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem()))) // one more element of any type
		case reflect.Struct: // its first field, a string (api.listen)
			v.Field(0).SetString(v.Field(0).String() + "x")
		default:
			t.Fatalf("field %s: teach this test to change a %s", typ.Field(i).Name, v.Kind())
		}
		c := Diff(base, changed)
		if want := []string{fields[i].name}; !slices.Equal(c.Fields, want) || c.Effects != fields[i].effects {
			t.Errorf("changing %s: Diff = %+v, want fields %q effects %b", typ.Field(i).Name, c, want, fields[i].effects)
		}
		if len(Diff(changed, changed).Fields) > 0 {
			t.Errorf("%s: a config differs from itself", typ.Field(i).Name)
		}
	}
}

// TestDiffEffects pins the effects that matter to the running proxy.
func TestDiffEffects(t *testing.T) {
	base := Default()
	for _, tc := range []struct {
		change func(*Config)
		want   Effect
	}{
		{func(c *Config) { c.MaxConns = 10 }, EffectRestart},
		{func(c *Config) { c.Listen = "127.0.0.1:1" }, EffectRestart},
		{func(c *Config) { c.Mode = "tunnel" }, EffectRestart},
		{func(c *Config) { c.Username, c.Password = "u", "p" }, EffectRestart},
		{func(c *Config) { c.Bypass = []string{"x"} }, EffectRestart | EffectSystemProxy},
		{func(c *Config) { c.SystemProxy = true }, EffectSystemProxy},
		{func(c *Config) { c.LogLevel, c.History = "debug", 1 }, EffectNextLaunch},
		{func(c *Config) { c.StartProxy = false }, 0},
		{func(c *Config) { c.StartAtLogin = true }, EffectAutostart},
		{func(c *Config) { c.Exits = []Exit{{Name: "a"}} }, EffectRestart},
		{func(c *Config) { c.ExitPolicy = "fastest" }, EffectRestart},
		{func(c *Config) { c.ExitSelected = "a" }, EffectSelectExit},
		{func(c *Config) { c.API.Secret = "s" }, EffectAPI},
	} {
		changed := base
		tc.change(&changed)
		if c := Diff(base, changed); c.Effects != tc.want || len(c.Fields) == 0 {
			t.Errorf("%v: effects %b, want %b", c.Fields, c.Effects, tc.want)
		}
	}
	none, empty := base, base
	none.Bypass, empty.Bypass = nil, []string{}
	if c := Diff(none, empty); len(c.Fields) > 0 {
		t.Errorf("no bypass list and an empty one differ: %v", c.Fields)
	}
}
