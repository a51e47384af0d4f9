package pprofserver

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"porthole/internal/freeport"
)

// quiet is a logger for what the test does not look at.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestUnsetListensNowhere(t *testing.T) {
	t.Setenv(EnvVar, "")
	stop, err := Start(quiet())
	if err != nil {
		t.Fatal(err)
	}
	stop()
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060", "localhost:0", "nonsense"} {
		t.Setenv(EnvVar, addr)
		stop, err := Start(quiet())
		if err == nil {
			stop()
			t.Errorf("%q accepted", addr)
		}
	}
	t.Setenv(EnvVar, "192.0.2.1:6060")
	if _, err := Start(quiet()); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("err = %v, want ErrNotLoopback", err)
	}
}

func TestServesProfilesOnLoopback(t *testing.T) {
	addr := startOnFreePort(t)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
}

// A name that resolves to loopback (DNS rebinding) is refused.
func TestRefusesOtherHostNames(t *testing.T) {
	addr := startOnFreePort(t)
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/debug/pprof/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "attacker.example:80"
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d for Host attacker.example, want 403", resp.StatusCode)
	}
}

// startOnFreePort runs Start on a free loopback port for the rest of t and
// returns the address.
func startOnFreePort(t *testing.T) string {
	t.Helper()
	addr := freeport.Loopback(t)
	t.Setenv(EnvVar, addr)
	stop, err := Start(quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}
