package sysproxy

import (
	"net"
	"strconv"
	"strings"
)

// TerminalEnv is the POSIX shell line that points programs started from a
// terminal at Porthole at addr ("Copy terminal env"): http_proxy and
// https_proxy as HTTP, all_proxy as SOCKS5 with remote name resolution,
// no_proxy from the bypass entries, each also in upper case (some programs
// read only one of the two).
func TerminalEnv(addr string, bypass []string) string {
	var sb strings.Builder
	sb.WriteString("export")
	for _, v := range terminalVars(addr, bypass) {
		for _, name := range []string{v[0], strings.ToUpper(v[0])} {
			sb.WriteString(" " + name + "=" + shellQuote(v[1]))
		}
	}
	return sb.String()
}

// TerminalEnvPowerShell is TerminalEnv for PowerShell. Windows environment
// names ignore case, so each variable is set once.
func TerminalEnvPowerShell(addr string, bypass []string) string {
	vars := terminalVars(addr, bypass)
	parts := make([]string, len(vars))
	for i, v := range vars {
		parts[i] = "$env:" + v[0] + "=" + psQuote(v[1])
	}
	return strings.Join(parts, "; ")
}

// terminalVars is the name and value of each variable.
func terminalVars(addr string, bypass []string) [][2]string {
	hp := terminalAddr(addr)
	vars := [][2]string{
		{"http_proxy", "http://" + hp},
		{"https_proxy", "http://" + hp},
		{"all_proxy", "socks5h://" + hp},
	}
	if np := noProxy(bypass); np != "" {
		vars = append(vars, [2]string{"no_proxy", np})
	}
	return vars
}

// terminalAddr is addr with an unspecified or empty host replaced by the
// loopback address programs on this machine can reach.
func terminalAddr(addr string) string {
	host, port, err := splitAddr(addr)
	if err != nil {
		return addr // shown as given; Enable reports what is wrong with it
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// noProxy is the bypass list in the no_proxy form curl, wget, Go, Python
// and git understand: a leading dot for suffixes (*.local → .local), CIDRs
// kept (curl 7.86+, Go, Python requests), <local> dropped (no equivalent).
func noProxy(bypass []string) string {
	var out []string
	for _, e := range bypass {
		e = strings.TrimSpace(e)
		switch {
		case e == "" || e == "<local>":
			continue
		case strings.HasPrefix(e, "*."):
			e = e[1:]
		}
		out = append(out, e)
	}
	return strings.Join(out, ",")
}

// shellQuote quotes s for a POSIX shell unless it is plainly safe (an IPv6
// address in brackets would otherwise be a glob).
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:,=@%+", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// psQuote is a PowerShell single-quoted string (no expansion inside).
func psQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
