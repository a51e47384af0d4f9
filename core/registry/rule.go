package registry

import "strconv"

// Rule is what decided a connection's route: the rule of the rule list
// that matched (Index is its 0-based position), or, with Index -1, the
// mode (Kind "mode", Payload "direct"/"tunnel"), the bypass list (Kind
// "bypass") or the rule set's default (Kind "default"). Action is the
// route taken ("direct", "tunnel", "tunnel:EXIT", "reject"). The zero
// value (Kind "") means nothing was recorded.
type Rule struct {
	Index   int
	Kind    string
	Payload string
	Action  string
}

// String is the inspector's text: "#3 domain-suffix example.com → direct",
// "mode: tunnel", "bypass → direct", "default → tunnel"; "" for the zero
// value. The number is 1-based, as a person counts a list.
func (r Rule) String() string {
	switch {
	case r.Kind == "":
		return ""
	case r.Kind == "mode":
		return "mode: " + r.Payload
	case r.Index < 0:
		if r.Payload != "" {
			return r.Kind + " " + r.Payload + " → " + r.Action
		}
		return r.Kind + " → " + r.Action
	case r.Payload == "":
		return "#" + strconv.Itoa(r.Index+1) + " " + r.Kind + " → " + r.Action
	}
	return "#" + strconv.Itoa(r.Index+1) + " " + r.Kind + " " + r.Payload + " → " + r.Action
}
