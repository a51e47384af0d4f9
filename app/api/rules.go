package api

import (
	"net/http"
	"strings"

	"porthole/core/registry"
	"porthole/core/rules"
)

// Rule types as mihomo's /rules and /connections spell them
// (constant.RuleType's String: "DomainSuffix", not "DOMAIN-SUFFIX").
const (
	ruleDomain         = "Domain"
	ruleDomainSuffix   = "DomainSuffix"
	ruleDomainKeyword  = "DomainKeyword"
	ruleDomainWildcard = "DomainWildcard"
	ruleIPCIDR         = "IPCIDR" // mihomo's IP-CIDR6 is an IPCIDR too
	ruleDstPort        = "DstPort"
	ruleProcess        = "Process"
	ruleProcessPath    = "ProcessPath"
	ruleInType         = "InType"
	ruleRuleSet        = "RuleSet"
	ruleMatch          = "Match"
	// ruleBypass is Porthole's own: a connection the bypass list sent
	// direct (the record does not say which entry; /rules lists them).
	ruleBypass = "Bypass"
)

// ClashRule is a rule of Porthole's rule list (normalised) in Clash's
// terms: its type, its payload, and the proxy its action names.
func ClashRule(r rules.Rule) Rule {
	typ, payload := clashRuleType(r.Kind, r.Value)
	return Rule{Type: typ, Payload: payload, Proxy: ProxyOf(r.Action, r.Exit), Size: -1}
}

// clashRuleType maps a rule kind and its value to mihomo's type and
// payload. A kind mihomo lacks keeps Porthole's name.
func clashRuleType(kind, value string) (typ, payload string) {
	switch kind {
	case rules.KindDomain:
		return ruleDomain, value
	case rules.KindDomainSuffix:
		return ruleDomainSuffix, value
	case rules.KindDomainKeyword:
		return ruleDomainKeyword, value
	case rules.KindIPCIDR:
		return ruleIPCIDR, value
	case rules.KindPort:
		return ruleDstPort, value
	case rules.KindApp:
		if strings.ContainsAny(value, `/\`) {
			return ruleProcessPath, value
		}
		return ruleProcess, value
	case rules.KindInbound:
		return ruleInType, clashInType(value)
	case rules.KindRuleSet:
		return ruleRuleSet, value
	case rules.KindMatch, "default":
		return ruleMatch, ""
	}
	return kind, value
}

// clashInType is an inbound rule's value as mihomo's IN-TYPE names the
// inbound (a CONNECT is its HTTPS, as in metadata.type).
func clashInType(v string) string {
	switch v {
	case "http":
		return "HTTP"
	case "connect":
		return "HTTPS"
	case "socks5":
		return "SOCKS5"
	case "socks4":
		return "SOCKS4"
	}
	return strings.ToUpper(v)
}

// ProxyOf is the proxy an action sends a connection to: DIRECT, REJECT,
// the exit a tunnel action names, else GLOBAL (the exits' policy, which
// the GLOBAL selector shows). action may be "tunnel:NAME".
func ProxyOf(action, exit string) string {
	if a, name, ok := strings.Cut(action, ":"); ok {
		action, exit = a, name
	}
	switch action {
	case rules.ActionDirect:
		return DirectName
	case rules.ActionReject:
		return RejectName
	}
	if exit != "" {
		return exit
	}
	return GlobalName
}

// connRule is a record's rule and rulePayload as mihomo gives them: the
// matching rule's type and payload, "Match" for the rule set's default,
// and "" when the mode decided (mihomo's global and direct modes record
// no rule either).
func connRule(r registry.Rule) (rule, payload string) {
	switch r.Kind {
	case "", "mode":
		return "", ""
	case "bypass":
		return ruleBypass, r.Payload
	}
	return clashRuleType(r.Kind, r.Payload)
}

type ruleJSON struct {
	Index   int    `json:"index"`
	Type    string `json:"type"`
	Payload string `json:"payload"`
	Proxy   string `json:"proxy"`
	Size    int    `json:"size"`
}

// getRules is the rule list, always an array.
func (s *Server) getRules(w http.ResponseWriter, r *http.Request) {
	list := s.opts.Backend.Rules()
	out := make([]ruleJSON, 0, len(list))
	for i, rule := range list {
		size := rule.Size
		if rule.Type != ruleRuleSet {
			size = -1
		}
		out = append(out, ruleJSON{Index: i, Type: rule.Type, Payload: rule.Payload, Proxy: rule.Proxy, Size: size})
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": out})
}
