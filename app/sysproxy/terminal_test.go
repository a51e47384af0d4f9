package sysproxy

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"porthole/core/outbound"
	"porthole/internal/childproc"
)

func TestTerminalEnv(t *testing.T) {
	got := TerminalEnv("127.0.0.1:8088", outbound.DefaultBypass)
	want := "export http_proxy=http://127.0.0.1:8088 HTTP_PROXY=http://127.0.0.1:8088" +
		" https_proxy=http://127.0.0.1:8088 HTTPS_PROXY=http://127.0.0.1:8088" +
		" all_proxy=socks5h://127.0.0.1:8088 ALL_PROXY=socks5h://127.0.0.1:8088" +
		" no_proxy=localhost,127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,.local" +
		" NO_PROXY=localhost,127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,.local"
	if got != want {
		t.Errorf("TerminalEnv\n got %s\nwant %s", got, want)
	}
	if got := TerminalEnv("0.0.0.0:9000", []string{"<local>"}); strings.Contains(got, "no_proxy") || !strings.Contains(got, "http://127.0.0.1:9000") {
		t.Errorf("unspecified host, only <local>: %s", got)
	}
	if got := TerminalEnv("[::1]:8088", nil); !strings.Contains(got, "http_proxy='http://[::1]:8088'") {
		t.Errorf("IPv6 must be quoted (brackets are a glob): %s", got)
	}
}

func TestTerminalEnvPowerShell(t *testing.T) {
	got := TerminalEnvPowerShell("127.0.0.1:8088", []string{"localhost", "*.local", "<local>"})
	want := "$env:http_proxy='http://127.0.0.1:8088'; $env:https_proxy='http://127.0.0.1:8088'; " +
		"$env:all_proxy='socks5h://127.0.0.1:8088'; $env:no_proxy='localhost,.local'"
	if got != want {
		t.Errorf("TerminalEnvPowerShell\n got %s\nwant %s", got, want)
	}
}

// TestTerminalEnvInAShell runs the line in a real shell and reads the
// variables back.
func TestTerminalEnvInAShell(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX shell")
	}
	sh := childproc.Need(t, "sh", "the line is not run in a shell")
	dir := t.TempDir()
	// A file that a glob of an unquoted [::1] would match.
	if err := os.WriteFile(dir+"/1", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	line := TerminalEnv("[::1]:8088", []string{"localhost", "*.local"})
	cmd := exec.Command(sh, "-c", line+` && printf '%s|%s|%s|%s' "$http_proxy" "$ALL_PROXY" "$no_proxy" "$NO_PROXY"`)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := "http://[::1]:8088|socks5h://[::1]:8088|localhost,.local|localhost,.local"; string(out) != want {
		t.Errorf("shell saw %q, want %q", out, want)
	}
}
