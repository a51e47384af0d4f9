package sysproxy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

const gnomeSchema = "org.gnome.system.proxy"

// gnome is GNOME and the desktops that share its settings (Cinnamon, MATE,
// Budgie, Pantheon, Unity, and GTK programs elsewhere), through the
// gsettings command. Keys are "SCHEMA KEY"; values are GVariant text as
// `gsettings get` prints it. The socks child is set too: Porthole's port
// speaks SOCKS5, and GLib programs use socks for what is not HTTP(S).
type gnome struct{ cmd string }

func (gnome) Name() string { return "gnome" }

// newGnome returns the backend if gsettings is installed and the proxy
// schema is present and writable.
func newGnome() (*gnome, error) {
	path, err := lookPath("gsettings")
	if err != nil {
		return nil, fmt.Errorf("gsettings: %w", err)
	}
	out, warn, err := runFull(path, "writable", gnomeSchema, "mode")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(out) != "true" {
		return nil, fmt.Errorf("gsettings: %s mode is locked (not writable)", gnomeSchema)
	}
	// Without dconf (or another store), GLib falls back to a backend that
	// keeps nothing once gsettings exits and says so on stderr.
	if strings.Contains(warn, "'memory' GSettings backend") {
		return nil, fmt.Errorf("gsettings: no settings store is installed (dconf): %s", strings.TrimSpace(warn))
	}
	return &gnome{cmd: path}, nil
}

func (gnome) Wanted(host string, port int, bypass []string) (map[string]string, error) {
	h, p := gvString(host), strconv.Itoa(port)
	return map[string]string{
		gnomeSchema + " mode":         gvString("manual"),
		gnomeSchema + " ignore-hosts": gvStrings(withoutLocal(bypass)),
		gnomeSchema + ".http host":    h,
		gnomeSchema + ".http port":    p,
		gnomeSchema + ".https host":   h,
		gnomeSchema + ".https port":   p,
		gnomeSchema + ".socks host":   h,
		gnomeSchema + ".socks port":   p,
	}, nil
}

func (g *gnome) Read(keys []string) (map[string]string, error) {
	return readEach(keys, func(k string) (string, error) {
		schema, key, err := splitGnomeKey(k)
		if err != nil {
			return "", err
		}
		return run(g.cmd, "get", schema, key)
	})
}

func (g *gnome) Write(values map[string]string) error {
	for _, k := range gnomeOrder(values) {
		schema, key, err := splitGnomeKey(k)
		if err != nil {
			return err
		}
		if _, err := run(g.cmd, "set", schema, key, values[k]); err != nil {
			return err
		}
	}
	return nil
}

// gnomeOrder writes the mode last when switching to manual (the addresses
// are in place before anything uses them) and first otherwise (nothing uses
// the addresses while they are being put back).
func gnomeOrder(values map[string]string) []string {
	keys := slices.Sorted(maps.Keys(values))
	const mode = gnomeSchema + " mode"
	v, ok := values[mode]
	if !ok {
		return keys
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == mode })
	if v == gvString("manual") {
		return append(keys, mode)
	}
	return append([]string{mode}, keys...)
}

func splitGnomeKey(k string) (schema, key string, err error) {
	schema, key, ok := strings.Cut(k, " ")
	if !ok || !strings.HasPrefix(schema, gnomeSchema) || key == "" {
		return "", "", fmt.Errorf("gsettings: %q is not a SCHEMA KEY pair of %s", k, gnomeSchema)
	}
	return schema, key, nil
}

// gvString is s as a GVariant string literal, the way g_variant_print
// writes it for strings without quotes (all Porthole ever writes).
func gvString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// gvStrings is a GVariant string array as gsettings prints it.
func gvStrings(list []string) string {
	if len(list) == 0 {
		return "@as []"
	}
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = gvString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
