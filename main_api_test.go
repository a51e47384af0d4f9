package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

var apiListenRE = regexp.MustCompile(`msg="control API listening" addr=(\S+)`)

// TestHeadlessControlAPI: --api starts the control API beside the proxy;
// its secret, made at the first start, is saved in the config file (0600)
// with nothing else of the command line; the API answers with it only.
// A taken API port leaves the proxy running.
func TestHeadlessControlAPI(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.json")
	p := startPorthole(t, "--headless", "--config", cfgFile, "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0")
	api := p.WaitFor(t, apiListenRE)[1]
	p.WaitFor(t, listenRE)
	fi, err := os.Stat(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config file mode %v", fi.Mode().Perm())
	}
	raw, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		Listen string
		API    struct{ Listen, Secret string }
	}
	if err := json.Unmarshal(raw, &saved); err != nil {
		t.Fatal(err)
	}
	if len(saved.API.Secret) < 20 || saved.Listen != "127.0.0.1:8088" || saved.API.Listen != "127.0.0.1:9090" {
		t.Errorf("saved %+v: want a secret and the file's defaults, not the flags", saved)
	}
	get := func(secret string) int {
		req, _ := http.NewRequest("GET", "http://"+api+"/version", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && !strings.Contains(string(body), `"version":"porthole-`) {
			t.Errorf("/version: %s", body)
		}
		return resp.StatusCode
	}
	if get(saved.API.Secret) != 200 || get("wrong") != 401 {
		t.Error("the API does not answer with its saved secret alone")
	}
	stopCleanly(t, p)

	// The API's port taken: said so, and the proxy runs.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	p = startPorthole(t, "--headless", "--config", cfgFile, "--listen", "127.0.0.1:0", "--api", taken.Addr().String())
	p.WaitFor(t, regexp.MustCompile(`level=WARN msg="the control API did not start; the proxy runs anyway".*address already in use`))
	p.WaitFor(t, listenRE)
	p.Stop(t, syscall.SIGINT)

	// --api "" turns it off (the API logs before the proxy does).
	p = startPorthole(t, "--headless", "--config", cfgFile, "--listen", "127.0.0.1:0", "--api", "")
	if m := p.WaitFor(t, regexp.MustCompile(`msg="(control API|proxy) listening"`)); m[1] != "proxy" {
		t.Errorf("the API started with --api \"\"")
	}
	p.Stop(t, syscall.SIGINT)
}
