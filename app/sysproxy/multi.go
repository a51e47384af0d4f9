package sysproxy

import (
	"fmt"
	"strings"
)

// multi sets several backends as one, e.g. KDE's kioslaverc and GNOME's
// gsettings on a Plasma desktop, where GTK programs and Firefox read the
// latter. Keys are "NAME:KEY"; the name is "kde+gnome".
type multi []Backend

func (m multi) Name() string {
	names := make([]string, len(m))
	for i, b := range m {
		names[i] = b.Name()
	}
	return strings.Join(names, "+")
}

func (m multi) Wanted(host string, port int, bypass []string) (map[string]string, error) {
	out := make(map[string]string)
	for _, b := range m {
		w, err := b.Wanted(host, port, bypass)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Name(), err)
		}
		for k, v := range w {
			out[b.Name()+":"+k] = v
		}
	}
	return out, nil
}

func (m multi) Read(keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	for _, b := range m {
		var own []string
		for _, k := range keys {
			if rest, ok := strings.CutPrefix(k, b.Name()+":"); ok {
				own = append(own, rest)
			}
		}
		if len(own) == 0 {
			continue
		}
		got, err := b.Read(own)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Name(), err)
		}
		for k, v := range got {
			out[b.Name()+":"+k] = v
		}
	}
	return out, nil
}

func (m multi) Write(values map[string]string) error {
	for _, b := range m {
		own := make(map[string]string)
		for k, v := range values {
			if rest, ok := strings.CutPrefix(k, b.Name()+":"); ok {
				own[rest] = v
			}
		}
		if len(own) == 0 {
			continue
		}
		if err := b.Write(own); err != nil {
			return fmt.Errorf("%s: %w", b.Name(), err)
		}
	}
	return nil
}
