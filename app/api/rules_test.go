package api

import (
	"slices"
	"testing"

	"porthole/core/registry"
	"porthole/core/rules"
)

// Porthole's rule kinds in mihomo's words, as /rules lists them.
func TestClashRule(t *testing.T) {
	for _, c := range []struct {
		in   rules.Rule
		want Rule
	}{
		{rules.Rule{Kind: "domain", Value: "a.example", Action: "direct"}, Rule{"Domain", "a.example", "DIRECT", -1}},
		{rules.Rule{Kind: "domain-suffix", Value: "example.com", Action: "tunnel"}, Rule{"DomainSuffix", "example.com", "GLOBAL", -1}},
		{rules.Rule{Kind: "domain-keyword", Value: "ads", Action: "reject"}, Rule{"DomainKeyword", "ads", "REJECT", -1}},
		{rules.Rule{Kind: "ip-cidr", Value: "10.0.0.0/8", Action: "tunnel", Exit: "office"}, Rule{"IPCIDR", "10.0.0.0/8", "office", -1}},
		{rules.Rule{Kind: "ip-cidr", Value: "fd00::/8", Action: "direct"}, Rule{"IPCIDR", "fd00::/8", "DIRECT", -1}},
		{rules.Rule{Kind: "port", Value: "8000-8999", Action: "direct"}, Rule{"DstPort", "8000-8999", "DIRECT", -1}},
		{rules.Rule{Kind: "app", Value: "firefox", Action: "tunnel"}, Rule{"Process", "firefox", "GLOBAL", -1}},
		{rules.Rule{Kind: "app", Value: "/usr/bin/curl", Action: "direct"}, Rule{"ProcessPath", "/usr/bin/curl", "DIRECT", -1}},
		{rules.Rule{Kind: "inbound", Value: "connect", Action: "direct"}, Rule{"InType", "HTTPS", "DIRECT", -1}},
		{rules.Rule{Kind: "inbound", Value: "socks5", Action: "direct"}, Rule{"InType", "SOCKS5", "DIRECT", -1}},
		{rules.Rule{Kind: "rule-set", Value: "ads", Action: "reject"}, Rule{"RuleSet", "ads", "REJECT", -1}},
		{rules.Rule{Kind: "match", Action: "tunnel", Exit: "home"}, Rule{"Match", "", "home", -1}},
	} {
		if got := ClashRule(c.in); got != c.want {
			t.Errorf("%+v: %+v, want %+v", c.in, got, c.want)
		}
	}
}

// A record's chains and rule, as mihomo's /connections gives them.
func TestConnRouteAndRule(t *testing.T) {
	for _, c := range []struct {
		what          string
		in            registry.Info
		chains        []string
		rule, payload string
	}{
		{"direct mode", registry.Info{Meta: registry.Meta{Route: registry.RouteDirect,
			Rule: registry.Rule{Index: -1, Kind: "mode", Payload: "direct", Action: "direct"}}},
			[]string{"DIRECT"}, "", ""},
		{"tunnel mode, dialled", registry.Info{Meta: registry.Meta{Route: registry.RouteTunnel,
			Rule: registry.Rule{Index: -1, Kind: "mode", Payload: "tunnel", Action: "tunnel"}}, Exit: "home"},
			[]string{"home", "GLOBAL"}, "", ""},
		{"tunnel mode, dialling", registry.Info{Meta: registry.Meta{Route: registry.RouteTunnel,
			Rule: registry.Rule{Index: -1, Kind: "mode", Payload: "tunnel", Action: "tunnel"}}},
			[]string{"GLOBAL"}, "", ""},
		{"bypassed", registry.Info{Meta: registry.Meta{Route: registry.RouteBypass,
			Rule: registry.Rule{Index: -1, Kind: "bypass", Action: "direct"}}},
			[]string{"DIRECT"}, "Bypass", ""},
		{"a rule naming an exit", registry.Info{Meta: registry.Meta{Route: registry.RouteTunnel,
			Rule: registry.Rule{Index: 1, Kind: "domain-suffix", Payload: "example.com", Action: "tunnel:office"}}, Exit: "office"},
			[]string{"office"}, "DomainSuffix", "example.com"},
		{"a rule naming an exit, dialling", registry.Info{Meta: registry.Meta{Route: registry.RouteTunnel,
			Rule: registry.Rule{Index: 1, Kind: "domain-suffix", Payload: "example.com", Action: "tunnel:office"}}},
			[]string{"office"}, "DomainSuffix", "example.com"},
		{"a tunnel rule", registry.Info{Meta: registry.Meta{Route: registry.RouteTunnel,
			Rule: registry.Rule{Index: 0, Kind: "port", Payload: "443", Action: "tunnel"}}, Exit: "home"},
			[]string{"home", "GLOBAL"}, "DstPort", "443"},
		{"the default", registry.Info{Meta: registry.Meta{Route: registry.RouteTunnel,
			Rule: registry.Rule{Index: -1, Kind: "default", Action: "tunnel"}}, Exit: "home"},
			[]string{"home", "GLOBAL"}, "Match", ""},
		{"rejected", registry.Info{Meta: registry.Meta{Route: registry.RouteReject,
			Rule: registry.Rule{Index: 2, Kind: "domain-keyword", Payload: "ads", Action: "reject"}}},
			[]string{"REJECT"}, "DomainKeyword", "ads"},
		{"a record from before rules", registry.Info{Meta: registry.Meta{Route: registry.RouteTunnel}, Exit: "home"},
			[]string{"home", "GLOBAL"}, "", ""},
	} {
		got := connOf(c.in, inbound{})
		if !slices.Equal(got.Chains, c.chains) || got.Rule != c.rule || got.RulePayload != c.payload {
			t.Errorf("%s: chains %v rule %q payload %q, want %v %q %q", c.what, got.Chains, got.Rule, got.RulePayload,
				c.chains, c.rule, c.payload)
		}
	}
}
