package outbound

import (
	"fmt"
	"strings"
)

// parseName checks s against the names a setting may take (Kind, Policy,
// Mode): "" is def when def is not "", and the error lists every valid name
// so the three settings word their complaint alike.
func parseName[T ~string](what, s string, def T, valid ...T) (T, error) {
	if s == "" && def != "" {
		return def, nil
	}
	for _, v := range valid {
		if T(s) == v {
			return v, nil
		}
	}
	names := make([]string, len(valid))
	for i, v := range valid {
		names[i] = string(v)
	}
	list := names[len(names)-1]
	if len(names) > 1 {
		list = strings.Join(names[:len(names)-1], ", ") + " or " + list
	}
	return "", fmt.Errorf("%s %q is not %s", what, s, list)
}
