//go:build !windows

package sysproxy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"porthole/core/outbound"
)

// Real networksetup output (macOS 14), as the parsers see it.
const (
	macServicesOut = "An asterisk (*) denotes that a network service is disabled.\n" +
		"USB 10/100/1000 LAN\nWi-Fi\n*Bluetooth PAN\nThunderbolt Bridge\n"
	macProxyOut  = "Enabled: Yes\nServer: corp-proxy.example\nPort: 3128\nAuthenticated Proxy Enabled: 0\n"
	macNoProxy   = "Enabled: No\nServer: \nPort: 0\nAuthenticated Proxy Enabled: 0\n"
	macBypassOut = "*.local\n169.254/16\n"
	macNoBypass  = "There aren't any bypass domains set on Wi-Fi.\n"
)

func TestParseMacServices(t *testing.T) {
	enabled, all := parseMacServices(macServicesOut)
	if want := []string{"USB 10/100/1000 LAN", "Wi-Fi", "Thunderbolt Bridge"}; !slices.Equal(enabled, want) {
		t.Errorf("enabled %q, want %q", enabled, want)
	}
	if len(all) != 4 || all[2] != "Bluetooth PAN" {
		t.Errorf("all %q", all)
	}
	if e, a := parseMacServices(strings.ReplaceAll(macServicesOut, "\n", "\r\n")); len(e) != 3 || len(a) != 4 {
		t.Errorf("CRLF: %q %q", e, a)
	}
}

func TestParseMacProxy(t *testing.T) {
	p, err := parseMacProxy(macProxyOut)
	if err != nil || p != (macProxy{Enabled: true, Server: "corp-proxy.example", Port: 3128}) {
		t.Fatalf("%+v, %v", p, err)
	}
	if p.String() != "on corp-proxy.example:3128" {
		t.Errorf("String %q", p.String())
	}
	q, err := parseMacProxy(macNoProxy)
	if err != nil || q != (macProxy{}) || q.String() != "off :0" {
		t.Fatalf("%+v %q, %v", q, q.String(), err)
	}
	for _, v := range []string{p.String(), q.String(), "on [::1]:8088"} {
		back, err := parseMacValue(v)
		if err != nil || back.String() != v {
			t.Errorf("round trip %q: %q, %v", v, back.String(), err)
		}
	}
	for _, bad := range []string{"** Error: The parameters were not valid.", "Enabled: Yes\nServer: x\nPort: many\n", ""} {
		if _, err := parseMacProxy(bad); err == nil {
			t.Errorf("parseMacProxy(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"maybe x:1", "on", "on x", "on x:99999"} {
		if _, err := parseMacValue(bad); err == nil {
			t.Errorf("parseMacValue(%q) accepted", bad)
		}
	}
}

func TestParseMacBypass(t *testing.T) {
	if got := parseMacBypass(macBypassOut); !slices.Equal(got, []string{"*.local", "169.254/16"}) {
		t.Errorf("%q", got)
	}
	if got := parseMacBypass(macNoBypass); len(got) != 0 {
		t.Errorf("%q", got)
	}
	got := macBypassDomains([]string{"localhost", ".corp.example", "*.local", "10.0.0.0/8", "<local>"})
	if want := []string{"localhost", "*.corp.example", "*.local", "10.0.0.0/8"}; !slices.Equal(got, want) {
		t.Errorf("macBypassDomains %q, want %q", got, want)
	}
}

func TestMacWantedAndKeys(t *testing.T) {
	w := macWanted([]string{"Wi-Fi", "USB 10/100/1000 LAN"}, "127.0.0.1", 8088, []string{"localhost", "<local>"})
	if len(w) != 8 || w["web/Wi-Fi"] != "on 127.0.0.1:8088" || w["socks/USB 10/100/1000 LAN"] != "on 127.0.0.1:8088" ||
		w["bypass/Wi-Fi"] != "localhost" {
		t.Fatalf("%v", w)
	}
	kind, svc, err := splitMacKey("secureweb/USB 10/100/1000 LAN")
	if err != nil || kind != "secureweb" || svc != "USB 10/100/1000 LAN" {
		t.Fatalf("%q %q %v", kind, svc, err)
	}
	for _, bad := range []string{"ftp/Wi-Fi", "web/", "Wi-Fi"} {
		if _, _, err := splitMacKey(bad); err == nil {
			t.Errorf("splitMacKey(%q) accepted", bad)
		}
	}
}

// fakeNetworksetup is a stand-in for macOS's networksetup that keeps its
// state in files, so the backend's command sequence is tested end to end.
const fakeNetworksetup = `#!/bin/sh
s="$NETWORKSETUP_STATE"
echo "$*" >> "$s/calls"
proxy() { # file
	if [ -f "$1" ]; then cat "$1"; else printf 'Enabled: No\nServer: \nPort: 0\nAuthenticated Proxy Enabled: 0\n'; fi
}
known() {
	grep -qx -e "$1" -e "\*$1" "$s/services" || { echo "** Error: The parameters were not valid."; exit 0; }
}
case "$1" in
-listallnetworkservices)
	echo "An asterisk (*) denotes that a network service is disabled."
	cat "$s/services" ;;
-getwebproxy|-getsecurewebproxy|-getsocksfirewallproxy)
	known "$2"; proxy "$s/$2.${1#-get}" ;;
-setwebproxy|-setsecurewebproxy|-setsocksfirewallproxy)
	known "$2"
	if [ -f "$s/refuse" ] && [ "$(cat "$s/refuse")" = "$1" ]; then
		echo "** Error: You cannot set proxies without an administrator's authorization."; exit 0
	fi
	printf 'Enabled: Yes\nServer: %s\nPort: %s\nAuthenticated Proxy Enabled: 0\n' "$3" "$4" > "$s/$2.${1#-set}" ;;
-setwebproxystate|-setsecurewebproxystate|-setsocksfirewallproxystate)
	known "$2"; k="${1#-set}"; k="${k%state}"; f="$s/$2.$k"
	proxy "$f" > "$f.tmp"
	if [ "$3" = on ]; then e=Yes; else e=No; fi
	sed "s/^Enabled: .*/Enabled: $e/" "$f.tmp" > "$f"; rm -f "$f.tmp" ;;
-getproxybypassdomains)
	known "$2"
	if [ -s "$s/$2.bypass" ]; then cat "$s/$2.bypass"; else echo "There aren't any bypass domains set on $2."; fi ;;
-setproxybypassdomains)
	known "$2"; svc="$2"; shift 2
	if [ "$1" = Empty ]; then : > "$s/$svc.bypass"; else printf '%s\n' "$@" > "$s/$svc.bypass"; fi ;;
*)
	echo "** Error: unknown command $1"; exit 1 ;;
esac
`

func useFakeNetworksetup(t *testing.T) (state string) {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "networksetup"), []byte(fakeNetworksetup), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("NETWORKSETUP_STATE", state)
	writeFile(t, filepath.Join(state, "services"), "Wi-Fi\n*Bluetooth PAN\nUSB LAN\n")
	// Wi-Fi has a corporate web proxy and Apple's default bypass list.
	writeFile(t, filepath.Join(state, "Wi-Fi.webproxy"), macProxyOut)
	writeFile(t, filepath.Join(state, "Wi-Fi.bypass"), macBypassOut)
	return state
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readMacState(t *testing.T, b *macos) map[string]string {
	t.Helper()
	var keys []string
	for _, svc := range []string{"Wi-Fi", "USB LAN", "Bluetooth PAN"} {
		for _, k := range []string{"web", "secureweb", "socks", "bypass"} {
			keys = append(keys, k+"/"+svc)
		}
	}
	got, err := b.Read(keys)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// sameMacState compares the settings before and after. A proxy that had no
// server keeps Porthole's address, switched off (networksetup cannot clear
// a server), which is the same to every program.
func sameMacState(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(after) != len(before) {
		t.Errorf("keys before %v, after %v", before, after)
	}
	for k, v := range before {
		if strings.HasPrefix(v, "off :") {
			if !strings.HasPrefix(after[k], "off ") {
				t.Errorf("%s = %q, want off", k, after[k])
			}
			continue
		}
		if after[k] != v {
			t.Errorf("%s = %q, want %q as before", k, after[k], v)
		}
	}
}

func TestMacOSBackendAgainstStandIn(t *testing.T) {
	state := useFakeNetworksetup(t)
	b, err := newMacOS()
	if err != nil {
		t.Fatal(err)
	}
	before := readMacState(t, b)
	if before["web/Wi-Fi"] != "on corp-proxy.example:3128" || before["bypass/Wi-Fi"] != "*.local,169.254/16" ||
		before["socks/USB LAN"] != "off :0" {
		t.Fatalf("read %v", before)
	}

	m := NewManager(b, journalPath(t), nil)
	if err := m.Enable("127.0.0.1:8088", outbound.DefaultBypass); err != nil {
		t.Fatal(err)
	}
	on := readMacState(t, b)
	for _, svc := range []string{"Wi-Fi", "USB LAN"} {
		for _, k := range []string{"web", "secureweb", "socks"} {
			if on[k+"/"+svc] != "on 127.0.0.1:8088" {
				t.Errorf("%s/%s = %q", k, svc, on[k+"/"+svc])
			}
		}
		if on["bypass/"+svc] != strings.Join(outbound.DefaultBypass, ",") {
			t.Errorf("bypass/%s = %q", svc, on["bypass/"+svc])
		}
	}
	if on["web/Bluetooth PAN"] != "off :0" {
		t.Errorf("a disabled service was changed: %q", on["web/Bluetooth PAN"])
	}

	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	sameMacState(t, before, readMacState(t, b))
	calls, err := os.ReadFile(filepath.Join(state, "calls"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(calls), "-setwebproxy Wi-Fi corp-proxy.example 3128\n-setwebproxystate Wi-Fi on\n") {
		t.Errorf("the web proxy was not restored with set, then state:\n%s", calls)
	}
}

func TestMacOSBackendReportsNetworksetupErrors(t *testing.T) {
	state := useFakeNetworksetup(t)
	writeFile(t, filepath.Join(state, "refuse"), "-setsocksfirewallproxy")
	b, err := newMacOS()
	if err != nil {
		t.Fatal(err)
	}
	before := readMacState(t, b)
	m := NewManager(b, journalPath(t), nil)
	err = m.Enable("127.0.0.1:8088", nil)
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Output, "administrator's authorization") {
		t.Fatalf("Enable: %v; want networksetup's own words", err)
	}
	sameMacState(t, before, readMacState(t, b))

	// A service removed while Porthole ran is skipped on restore.
	if err := os.Remove(filepath.Join(state, "refuse")); err != nil {
		t.Fatal(err)
	}
	if err := m.Enable("127.0.0.1:8088", nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(state, "services"), "Wi-Fi\n")
	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	if got := readMacState(t, b)["web/Wi-Fi"]; got != "on corp-proxy.example:3128" {
		t.Fatalf("web/Wi-Fi = %q", got)
	}
}
