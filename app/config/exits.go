package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/rules"
	"porthole/core/tunnel"
)

// Exit is one exit in the settings file.
type Exit struct {
	Name string `json:"name"`
	// Kind is porthole ("" too), http or socks5.
	Kind string `json:"kind,omitempty"`
	// URL: ws:// or wss:// for porthole, http:// or https:// for http,
	// socks5:// for socks5.
	URL string `json:"url"`
	// Token, TokenFile: a porthole exit's token (the file wins; then
	// PORTHOLE_TOKEN).
	Token     string `json:"token,omitempty"`
	TokenFile string `json:"token_file,omitempty"`
	// CA is a PEM file of CAs to trust besides the system's: for a wss://
	// exit or an https:// proxy.
	CA string `json:"ca,omitempty"`
	// Username and Password (or PasswordFile, which wins) for an upstream
	// proxy: Basic for http, RFC 1929 for socks5.
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
}

// ExitList is the exits the settings describe: Exits, or, in a file of
// before several exits, the one exit (with token, token_file and exit_ca)
// as a porthole exit named after its host. Nil without any.
func (c Config) ExitList() []Exit {
	if len(c.Exits) > 0 {
		return c.Exits
	}
	if c.Exit == "" {
		return nil
	}
	return []Exit{{Name: core.ExitNameFromURL(c.Exit), Kind: string(outbound.KindPorthole), URL: c.Exit,
		Token: c.Token, TokenFile: c.TokenFile, CA: c.ExitCA}}
}

// validateExits checks exits, exit_policy and exit_selected, naming the
// field (exits[1].url).
func (c Config) validateExits() error {
	names := map[string]bool{}
	for i, x := range c.Exits {
		at := fmt.Sprintf("exits[%d]", i)
		if x.Name == "" {
			return invalid(at+".name", "%s.name: every exit needs a name", at)
		}
		if names[x.Name] {
			return invalid(at+".name", "%s.name: %q is the name of another exit", at, x.Name)
		}
		names[x.Name] = true
		kind, err := outbound.ParseKind(x.Kind)
		if err != nil {
			return invalid(at+".kind", "%s.kind: %w", at, err)
		}
		if err := checkExitURL(kind, x.URL); err != nil {
			return invalid(at+".url", "%s.url: %w", at, err)
		}
		switch {
		case kind == outbound.KindPorthole && (x.Username != "" || x.Password != "" || x.PasswordFile != ""):
			return invalid(at+".username", "%s.username: a porthole exit takes a token, not a username and password", at)
		case kind != outbound.KindPorthole && (x.Token != "" || x.TokenFile != ""):
			return invalid(at+".token", "%s.token: an %s proxy takes a username and password, not a token", at, kind)
		case x.Username == "" && (x.Password != "" || x.PasswordFile != ""):
			return invalid(at+".username", "%s.username: a password without a username", at)
		case kind == outbound.KindSOCKS5 && x.CA != "":
			return invalid(at+".ca", "%s.ca: a SOCKS5 proxy is not spoken to over TLS", at)
		}
	}
	if _, err := outbound.ParsePolicy(c.ExitPolicy); err != nil {
		return invalid("exit_policy", "exit_policy: %w", err)
	}
	if c.ExitSelected != "" {
		found := false
		for _, x := range c.ExitList() {
			found = found || x.Name == c.ExitSelected
		}
		if !found {
			return invalid("exit_selected", "exit_selected: %q is none of the exits", c.ExitSelected)
		}
	}
	return nil
}

func checkExitURL(kind outbound.Kind, s string) error {
	if kind == outbound.KindPorthole {
		return tunnel.CheckURL(s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	ok := u.Host != "" && u.Port() != "" && (kind == outbound.KindHTTP && (u.Scheme == "http" || u.Scheme == "https") ||
		kind == outbound.KindSOCKS5 && (u.Scheme == "socks5" || u.Scheme == "socks5h"))
	if !ok {
		if kind == outbound.KindSOCKS5 {
			return fmt.Errorf("%q: want socks5://host:port", u.Redacted())
		}
		return fmt.Errorf("%q: want http://host:port or https://host:port", u.Redacted())
	}
	return nil
}

// UnknownRuleExit finds the first rule of list that names an exit the
// config does not have, so a typo is refused where it is written instead
// of failing each connection the rule sends: its index and the name, or
// -1. Rules that do not normalise are Validate's business, not this one's.
func (c Config) UnknownRuleExit(list []rules.Rule) (int, string) {
	known := map[string]bool{}
	for _, x := range c.ExitList() {
		known[x.Name] = true
	}
	for i, r := range list {
		if n, err := r.Normalize(); err == nil && n.Exit != "" && !known[n.Exit] {
			return i, n.Exit
		}
	}
	return -1, ""
}

// exitNames lists the exits' names for a message ("none" without any).
func (c Config) exitNames() string {
	var names []string
	for _, x := range c.ExitList() {
		names = append(names, strconv.Quote(x.Name))
	}
	if len(names) == 0 {
		return "none configured"
	}
	return strings.Join(names, ", ")
}
