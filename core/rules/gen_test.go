package rules

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
)

// mixedRules is a real-looking list of n rules: mostly suffixes and exact
// names (as imported ad and region lists are), some keywords, v4 and v6
// prefixes, ports and a final match.
func mixedRules(n int, seed uint64) []Rule {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	tlds := []string{"com", "net", "org", "io", "cn", "de", "co.uk"}
	out := make([]Rule, 0, n)
	for i := 0; len(out) < n-1; i++ {
		name := fmt.Sprintf("%s%d.%s", []string{"example-", "cdn", "ads", "track", "static"}[rng.IntN(5)], i, tlds[rng.IntN(len(tlds))])
		action := []string{"direct", "tunnel", "reject"}[rng.IntN(3)]
		switch k := rng.IntN(100); {
		case k < 55:
			out = append(out, Rule{Kind: KindDomainSuffix, Value: name, Action: action})
		case k < 75:
			out = append(out, Rule{Kind: KindDomain, Value: "www." + name, Action: action})
		case k < 80:
			out = append(out, Rule{Kind: KindDomainKeyword, Value: fmt.Sprintf("kw%dx", i), Action: action})
		case k < 92:
			a := netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0})
			out = append(out, Rule{Kind: KindIPCIDR, Value: netip.PrefixFrom(a, 16+rng.IntN(9)).Masked().String(), Action: action})
		case k < 98:
			var b [16]byte
			b[0], b[1] = 0x24, byte(rng.IntN(256))
			b[2], b[3], b[4] = byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))
			out = append(out, Rule{Kind: KindIPCIDR, Value: netip.PrefixFrom(netip.AddrFrom16(b), 32+rng.IntN(17)).Masked().String(), Action: action})
		default:
			lo := 1024 + rng.IntN(60000)
			out = append(out, Rule{Kind: KindPort, Value: fmt.Sprintf("%d-%d", lo, lo+rng.IntN(50)), Action: action})
		}
	}
	return append(out, Rule{Kind: KindMatch, Action: "tunnel"})
}
