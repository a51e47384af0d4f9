package sysproxy

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// macos is macOS through networksetup, for every enabled network service:
// its web (HTTP), secure web (HTTPS) and SOCKS proxies and its bypass
// domains. Keys are "KIND/SERVICE" with KIND web, secureweb, socks or
// bypass; a proxy's value is "on HOST:PORT" or "off HOST:PORT", the bypass
// value the domains joined with commas. The code is plain command running
// and parsing, so it is built and tested everywhere (against a stand-in
// networksetup script); Detect picks it only on macOS. Proxy passwords are
// neither read nor written (networksetup cannot read them back).
type macos struct{ cmd string }

const macNetworksetup = "/usr/sbin/networksetup"

func (macos) Name() string { return "macos" }

func newMacOS() (*macos, error) {
	path, err := lookPath("networksetup")
	if err != nil {
		// Programs started from the Finder may have a PATH without /usr/sbin.
		if _, serr := os.Stat(macNetworksetup); serr != nil {
			return nil, fmt.Errorf("networksetup: %w", err)
		}
		path = macNetworksetup
	}
	return &macos{cmd: path}, nil
}

// macProxyKinds maps a key's kind to networksetup's get, set and state
// verbs.
var macProxyKinds = map[string][3]string{
	"web":       {"-getwebproxy", "-setwebproxy", "-setwebproxystate"},
	"secureweb": {"-getsecurewebproxy", "-setsecurewebproxy", "-setsecurewebproxystate"},
	"socks":     {"-getsocksfirewallproxy", "-setsocksfirewallproxy", "-setsocksfirewallproxystate"},
}

const macBypass = "bypass"

func (m *macos) Wanted(host string, port int, bypass []string) (map[string]string, error) {
	enabled, _, err := m.services()
	if err != nil {
		return nil, err
	}
	if len(enabled) == 0 {
		return nil, errors.New("networksetup lists no enabled network service")
	}
	return macWanted(enabled, host, port, bypass), nil
}

func (m *macos) Read(keys []string) (map[string]string, error) {
	_, all, err := m.services()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		kind, svc, err := splitMacKey(k)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(all, svc) {
			continue // the service was removed: nothing of ours left there
		}
		if kind == macBypass {
			o, err := m.run("-getproxybypassdomains", svc)
			if err != nil {
				return nil, err
			}
			out[k] = strings.Join(parseMacBypass(o), ",")
			continue
		}
		o, err := m.run(macProxyKinds[kind][0], svc)
		if err != nil {
			return nil, err
		}
		p, err := parseMacProxy(o)
		if err != nil {
			return nil, fmt.Errorf("networksetup %s %q: %w", macProxyKinds[kind][0], svc, err)
		}
		out[k] = p.String()
	}
	return out, nil
}

func (m *macos) Write(values map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(values)) {
		kind, svc, err := splitMacKey(k)
		if err != nil {
			return err
		}
		if kind == macBypass {
			args := []string{"-setproxybypassdomains", svc}
			if v := values[k]; v == "" {
				args = append(args, "Empty")
			} else {
				args = append(args, strings.Split(v, ",")...)
			}
			if _, err := m.run(args...); err != nil {
				return err
			}
			continue
		}
		p, err := parseMacValue(values[k])
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		verbs := macProxyKinds[kind]
		if p.Server != "" && p.Port > 0 {
			if _, err := m.run(verbs[1], svc, p.Server, strconv.Itoa(p.Port)); err != nil {
				return err
			}
		}
		state := "off"
		if p.Enabled {
			state = "on"
		}
		if _, err := m.run(verbs[2], svc, state); err != nil {
			return err
		}
	}
	return nil
}

// services lists the enabled network services and all of them.
func (m *macos) services() (enabled, all []string, err error) {
	out, err := m.run("-listallnetworkservices")
	if err != nil {
		return nil, nil, err
	}
	enabled, all = parseMacServices(out)
	return enabled, all, nil
}

// run runs networksetup, which reports some errors on standard output
// with status 0 ("** Error: ...").
func (m *macos) run(args ...string) (string, error) {
	out, err := run(m.cmd, args...)
	if err != nil {
		return "", err
	}
	if i := strings.Index(out, "** Error"); i >= 0 {
		return "", &CommandError{Command: commandLine(m.cmd, args), Output: strings.TrimSpace(out[i:]),
			Err: errors.New("networksetup reported an error")}
	}
	return out, nil
}

// macWanted is what Porthole sets on each enabled service.
func macWanted(services []string, host string, port int, bypass []string) map[string]string {
	on := macProxy{Enabled: true, Server: host, Port: port}.String()
	by := strings.Join(macBypassDomains(bypass), ",")
	out := make(map[string]string, 4*len(services))
	for _, svc := range services {
		for kind := range macProxyKinds {
			out[kind+"/"+svc] = on
		}
		out[macBypass+"/"+svc] = by
	}
	return out
}

func splitMacKey(k string) (kind, service string, err error) {
	kind, service, ok := strings.Cut(k, "/")
	if _, known := macProxyKinds[kind]; !ok || service == "" || (!known && kind != macBypass) {
		return "", "", fmt.Errorf("networksetup: %q is not a KIND/SERVICE key", k)
	}
	return kind, service, nil
}

// macProxy is one of a service's proxies as networksetup shows it.
type macProxy struct {
	Enabled bool
	Server  string
	Port    int
}

func (p macProxy) String() string {
	state := "off"
	if p.Enabled {
		state = "on"
	}
	return state + " " + net.JoinHostPort(p.Server, strconv.Itoa(p.Port))
}

// parseMacValue reads the journal form written by macProxy.String.
func parseMacValue(v string) (macProxy, error) {
	state, hp, ok := strings.Cut(v, " ")
	if !ok || (state != "on" && state != "off") {
		return macProxy{}, fmt.Errorf("%q is not \"on|off HOST:PORT\"", v)
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return macProxy{}, fmt.Errorf("%q is not \"on|off HOST:PORT\": %w", v, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return macProxy{}, fmt.Errorf("%q is not \"on|off HOST:PORT\": bad port", v)
	}
	return macProxy{Enabled: state == "on", Server: host, Port: n}, nil
}

// parseMacServices reads `networksetup -listallnetworkservices`: a note
// line, then one service per line, disabled ones marked with '*'.
func parseMacServices(out string) (enabled, all []string) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "An asterisk (*)") {
			continue
		}
		if name, disabled := strings.CutPrefix(line, "*"); disabled {
			all = append(all, name)
			continue
		}
		enabled = append(enabled, line)
		all = append(all, line)
	}
	return enabled, all
}

// parseMacProxy reads `networksetup -getwebproxy SERVICE` and its
// secure-web and SOCKS siblings:
//
//	Enabled: Yes
//	Server: proxy.example
//	Port: 3128
//	Authenticated Proxy Enabled: 0
func parseMacProxy(out string) (macProxy, error) {
	var p macProxy
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		name, value, ok := strings.Cut(strings.TrimRight(sc.Text(), "\r"), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch name {
		case "Enabled":
			p.Enabled = value == "Yes"
			seen++
		case "Server":
			p.Server = value
			seen++
		case "Port":
			n, err := strconv.Atoi(value)
			if err != nil {
				return macProxy{}, fmt.Errorf("port %q is not a number", value)
			}
			p.Port = n
			seen++
		}
	}
	if seen != 3 {
		return macProxy{}, fmt.Errorf("unexpected output %q", out)
	}
	return p, nil
}

// parseMacBypass reads `networksetup -getproxybypassdomains SERVICE`: one
// domain per line, or a sentence saying there are none.
func parseMacBypass(out string) []string {
	var list []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "There aren't any bypass domains") {
			continue
		}
		list = append(list, line)
	}
	return list
}

// macBypassDomains turns bypass entries into networksetup's bypass
// domains: ".example.com" becomes "*.example.com"; <local> has no
// equivalent in networksetup (it is a checkbox of System Settings).
func macBypassDomains(bypass []string) []string {
	out := make([]string, 0, len(bypass))
	for _, e := range bypass {
		switch {
		case e == "<local>":
		case strings.HasPrefix(e, "."):
			out = append(out, "*"+e)
		default:
			out = append(out, e)
		}
	}
	return out
}
