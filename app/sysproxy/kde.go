package sysproxy

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
)

// kde is KDE Plasma 5 and 6: the [Proxy Settings] group of kioslaverc,
// written with kwriteconfig6 or kwriteconfig5 and read with kreadconfig,
// then a D-Bus signal that makes running KIO programs reread it. Keys are
// the entry names; a value "" is an absent entry (written as a delete).
type kde struct {
	write, read string // kwriteconfigN, kreadconfigN
	dbusSend    string // "" if dbus-send is not installed
	log         func(msg string, args ...any)
}

const (
	kdeFile  = "kioslaverc"
	kdeGroup = "Proxy Settings"
)

func (kde) Name() string { return "kde" }

// newKDE returns the backend using the newest kwriteconfig/kreadconfig pair
// installed (6, then 5).
func newKDE(debug func(msg string, args ...any)) (*kde, error) {
	var errs []error
	for _, v := range []string{"6", "5"} {
		w, werr := lookPath("kwriteconfig" + v)
		r, rerr := lookPath("kreadconfig" + v)
		if werr == nil && rerr == nil {
			k := &kde{write: w, read: r, log: debug}
			if d, err := lookPath("dbus-send"); err == nil {
				k.dbusSend = d
			}
			return k, nil
		}
		errs = append(errs, werr, rerr)
	}
	return nil, fmt.Errorf("KDE: %w", errors.Join(errs...))
}

func (kde) Wanted(host string, port int, bypass []string) (map[string]string, error) {
	hp := net.JoinHostPort(host, "0")
	hp = strings.TrimSuffix(hp, ":0")     // host, bracketed if IPv6
	addr := hp + " " + strconv.Itoa(port) // kioslaverc's "URL PORT" form
	return map[string]string{
		"ProxyType":         "1", // manual
		"httpProxy":         "http://" + addr,
		"httpsProxy":        "http://" + addr,
		"socksProxy":        "socks://" + addr,
		"NoProxyFor":        strings.Join(withoutLocal(bypass), ","),
		"ReversedException": "false", // NoProxyFor lists what bypasses, not what uses the proxy
	}, nil
}

func (k *kde) Read(keys []string) (map[string]string, error) {
	return readEach(keys, func(key string) (string, error) {
		return run(k.read, "--file", kdeFile, "--group", kdeGroup, "--key", key)
	})
}

func (k *kde) Write(values map[string]string) error {
	for _, key := range kdeOrder(values) {
		args := []string{"--file", kdeFile, "--group", kdeGroup, "--key", key}
		if v := values[key]; v == "" {
			args = append(args, "--delete", "")
		} else {
			args = append(args, v)
		}
		if _, err := run(k.write, args...); err != nil {
			return err
		}
	}
	k.reparse()
	return nil
}

// reparse tells running KIO programs to reread kioslaverc, as the proxy
// settings module does. Best effort: without a session bus, programs
// started from now on still see the new settings.
func (k *kde) reparse() {
	if k.dbusSend == "" {
		k.debug("KDE proxy settings written; dbus-send is not installed, running programs see them after a restart")
		return
	}
	if _, err := run(k.dbusSend, "--session", "--type=signal", "/KIO/Scheduler",
		"org.kde.KIO.Scheduler.reparseSlaveConfiguration", "string:"); err != nil {
		k.debug("KDE proxy settings written; telling running programs failed", "err", err)
	}
}

func (k *kde) debug(msg string, args ...any) {
	if k.log != nil {
		k.log(msg, args...)
	}
}

// kdeOrder writes ProxyType last when switching to manual and first
// otherwise, like gnomeOrder.
func kdeOrder(values map[string]string) []string {
	keys := slices.Sorted(maps.Keys(values))
	v, ok := values["ProxyType"]
	if !ok {
		return keys
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == "ProxyType" })
	if v == "1" {
		return append(keys, "ProxyType")
	}
	return append([]string{"ProxyType"}, keys...)
}
