package ui

import (
	"strings"
)

// connFilter is the inspector's filter box, parsed. Words are separated by
// spaces and must all match (AND). A plain word is looked for, ignoring
// case, in the id, the target host:port and the error. A word of the form
// key:value looks at one field:
//
//	route:tunnel  state:closed  proto:socks5   (the value is a prefix: route:tun)
//	port:443                                   (exact)
//	host:example  id:c9f2  error:refused       (substring)
//	app:firefox                                (the program's name, a prefix)
//	app:/usr/bin/python3                       (its executable's path, exact)
//	app:unknown                                (no program known, or not yet)
//	rule:example.com  rule:#3  rule:reject     (the rule that decided: substring)
//	exit:home                                  (the exit that carried it, a prefix)
//
// A leading "-" negates a word: "-state:open", "-google". A word whose key
// is not one of these is a plain word, so IPv6 hosts and "host:port" text
// still work as substrings.
type connFilter struct {
	terms []filterTerm
}

type filterField uint8

const (
	fieldAny filterField = iota
	fieldRoute
	fieldState
	fieldProto
	fieldPort
	fieldHost
	fieldID
	fieldError
	fieldApp
	fieldRule
	fieldExitName
)

var filterKeys = map[string]filterField{
	"route":    fieldRoute,
	"state":    fieldState,
	"proto":    fieldProto,
	"protocol": fieldProto,
	"port":     fieldPort,
	"host":     fieldHost,
	"id":       fieldID,
	"error":    fieldError,
	"err":      fieldError,
	"app":      fieldApp,
	"rule":     fieldRule,
	"exit":     fieldExitName,
}

type filterTerm struct {
	field filterField
	value string // lower case
	not   bool
}

// parseFilter never fails: whatever the user types means something.
func parseFilter(text string) connFilter {
	var f connFilter
	for _, word := range strings.Fields(strings.ToLower(text)) {
		t := filterTerm{}
		if len(word) > 1 && word[0] == '-' {
			t.not, word = true, word[1:]
		}
		t.value = word
		if key, value, ok := strings.Cut(word, ":"); ok {
			if field, known := filterKeys[key]; known && value != "" {
				t.field, t.value = field, value
			}
		}
		f.terms = append(f.terms, t)
	}
	return f
}

// empty reports whether the filter lets every row through.
func (f connFilter) empty() bool { return len(f.terms) == 0 }

// match reports whether r passes every term.
func (f connFilter) match(r *connRow) bool {
	for _, t := range f.terms {
		if t.matches(r) == t.not {
			return false
		}
	}
	return true
}

func (t filterTerm) matches(r *connRow) bool {
	switch t.field {
	case fieldRoute:
		return strings.HasPrefix(r.Route.String(), t.value)
	case fieldState:
		return strings.HasPrefix(r.State.String(), t.value)
	case fieldProto:
		return strings.HasPrefix(r.Proto.String(), t.value)
	case fieldPort:
		return r.port == t.value
	case fieldHost:
		return containsFold(r.host, t.value)
	case fieldID:
		return strings.Contains(r.idText, t.value) // xids are lower case already
	case fieldError:
		return containsFold(r.errText, t.value)
	case fieldApp:
		return appMatches(r, t.value)
	case fieldRule:
		return containsFold(r.ruleText, t.value)
	case fieldExitName:
		return r.Exit != "" && len(r.Exit) >= len(t.value) && strings.EqualFold(r.Exit[:len(t.value)], t.value)
	}
	return strings.Contains(r.search, t.value)
}

// containsFold is strings.Contains ignoring case for a lower-case needle,
// without allocating for the common all-lower-case haystack.
func containsFold(s, lowerNeedle string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.Contains(strings.ToLower(s), lowerNeedle)
		}
	}
	return strings.Contains(s, lowerNeedle)
}

// appMatches is the app: word. A value with a path separator is an
// executable's path and must be all of it: a prefix of a path would take
// in a whole directory of programs.
func appMatches(r *connRow, lowerValue string) bool {
	p := r.Process
	if lowerValue == unknownApp {
		return !p.Known()
	}
	if !p.Known() {
		return false
	}
	if strings.ContainsAny(lowerValue, "/\\") {
		return strings.EqualFold(p.Path, lowerValue)
	}
	return len(p.Name) >= len(lowerValue) && strings.EqualFold(p.Name[:len(lowerValue)], lowerValue)
}
