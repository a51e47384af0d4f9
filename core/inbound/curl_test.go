package inbound_test

import (
	"encoding/pem"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"porthole/core"
	"porthole/core/inbound"
	"porthole/core/registry"
	"porthole/internal/curltest"
)

func TestCurl(t *testing.T) {
	t.Parallel()
	curltest.Need(t)
	v := newEnv(t, nil)
	port := strconv.Itoa(v.origin.Listener.Addr().(*net.TCPAddr).Port)
	tlsOrigin := httptest.NewTLSServer(originMux())
	t.Cleanup(tlsOrigin.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsOrigin.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	proxyHTTP := "http://" + v.addr
	type curlCase struct {
		name   string
		args   []string
		want   string         // curl's output
		proto  registry.Proto // what the registry recorded
		target string
	}
	cases := []curlCase{
		{"http", []string{"-x", proxyHTTP, v.origin.URL + "/hello"}, "hello", registry.ProtoHTTP, "127.0.0.1:" + port},
		{"https-connect", []string{"-x", proxyHTTP, "--cacert", ca, tlsOrigin.URL + "/hello"}, "hello", registry.ProtoConnect, tlsOrigin.Listener.Addr().String()},
		{"https-connect-insecure", []string{"-x", proxyHTTP, "-k", tlsOrigin.URL + "/hello"}, "hello", registry.ProtoConnect, tlsOrigin.Listener.Addr().String()},
		{"socks5", []string{"--socks5", v.addr, v.origin.URL + "/host"}, "127.0.0.1:" + port, registry.ProtoSOCKS5, "127.0.0.1:" + port},
		{"socks5-hostname", []string{"--socks5-hostname", v.addr, "http://localhost:" + port + "/host"}, "localhost:" + port, registry.ProtoSOCKS5, "localhost:" + port},
		{"socks4a", []string{"--socks4a", v.addr, "http://localhost:" + port + "/host"}, "localhost:" + port, registry.ProtoSOCKS4, "localhost:" + port},
		{"socks4", []string{"--socks4", v.addr, v.origin.URL + "/host"}, "127.0.0.1:" + port, registry.ProtoSOCKS4, "127.0.0.1:" + port},
	}
	if hasIPv6() {
		o6 := newOrigin(t, "tcp6", originMux())
		a6 := o6.Listener.Addr().String()
		cases = append(cases,
			curlCase{"socks5-ipv6", []string{"--socks5", v.addr, o6.URL + "/host"}, a6, registry.ProtoSOCKS5, a6},
			curlCase{"http-ipv6", []string{"-x", proxyHTTP, o6.URL + "/host"}, a6, registry.ProtoHTTP, a6},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(eventsOf(v.events.snapshot(), registry.KindClosed, nil))
			out, err := curltest.Run(t, tc.args...)
			if err != nil || out != tc.want {
				t.Fatalf("curl %v: %q, %v; want %q", tc.args, out, err, tc.want)
			}
			// curl has exited, so the proxy sees the end of the connection.
			evs := v.events.waitFor(t, "curl's connection to close", func(evs []registry.Event) bool {
				return len(eventsOf(evs, registry.KindClosed, nil)) > before
			})
			rec := eventsOf(evs, registry.KindClosed, nil)[before]
			if rec.Proto != tc.proto || rec.Target != tc.target {
				t.Errorf("record: %s %s, want %s %s", rec.Proto, rec.Target, tc.proto, tc.target)
			}
		})
	}
	t.Run("keep-alive", func(t *testing.T) {
		o2 := newOrigin(t, "tcp4", originMux())
		out, err := curltest.Run(t, "-x", proxyHTTP, v.origin.URL+"/hello", o2.URL+"/hello", v.origin.URL+"/hello")
		if err != nil || out != "hellohellohello" {
			t.Fatalf("curl: %q, %v", out, err)
		}
		evs := v.events.waitFor(t, "three forwarded requests", func(evs []registry.Event) bool {
			return len(eventsOf(evs, registry.KindClosed, func(i registry.Info) bool { return i.Target == o2.Listener.Addr().String() })) == 1
		})
		rec := eventsOf(evs, registry.KindClosed, func(i registry.Info) bool { return i.Target == o2.Listener.Addr().String() })[0]
		if n := len(eventsOf(evs, registry.KindOpened, byClient(rec.Client))); n != 3 {
			t.Errorf("%d upstream records on curl's connection %s, want 3 (one client connection, three targets in turn)", n, rec.Client)
		}
	})
}

func TestCurlProxyUser(t *testing.T) {
	t.Parallel()
	curltest.Need(t)
	v := newEnv(t, func(c *core.Config) { c.Auth = &inbound.Auth{Username: "alice", Password: "s3cret"} })
	v.noisy = true // wrong passwords are logged
	url := v.origin.URL + "/hello"
	for _, mode := range [][]string{{"-x", "http://" + v.addr}, {"--socks5-hostname", v.addr}, {"--socks5", v.addr}} {
		t.Run(mode[0], func(t *testing.T) {
			if out, err := curltest.Run(t, append(mode, "--proxy-user", "alice:s3cret", url)...); err != nil || out != "hello" {
				t.Fatalf("right password: %q, %v", out, err)
			}
			if out, err := curltest.Run(t, append(mode, "--proxy-user", "alice:wrong", url)...); err == nil {
				t.Fatalf("wrong password: %q, want a failure", out)
			}
			if out, err := curltest.Run(t, append(mode, url)...); err == nil {
				t.Fatalf("no password: %q, want a failure", out)
			}
			if out, err := curltest.Run(t, append(mode, "--proxy-user", "alice:s3cret", url)...); err != nil || out != "hello" {
				t.Fatalf("right password again: %q, %v", out, err)
			}
		})
	}
}
