package sysproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// commandTimeout bounds every settings command: a gsettings waiting for a
// D-Bus that never answers must not hang Quit.
const commandTimeout = 15 * time.Second

// run runs name with args and returns its standard output. A non-zero exit
// is a *CommandError carrying what the command printed.
func run(name string, args ...string) (string, error) {
	out, _, err := runFull(name, args...)
	return out, err
}

// runFull is run that also returns what the command printed on standard
// error when it succeeded (warnings).
func runFull(name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout = &outBuf
	cmd.Stderr = &errBuf
	if err := cmd.Run(); err != nil {
		out := strings.TrimSpace(errBuf.String())
		if out == "" {
			out = strings.TrimSpace(outBuf.String())
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s: %w", commandTimeout, ctx.Err())
		}
		return "", "", &CommandError{Command: commandLine(name, args), Output: out, Err: err}
	}
	return outBuf.String(), errBuf.String(), nil
}

func commandLine(name string, args []string) string {
	var sb strings.Builder
	sb.WriteString(name)
	for _, a := range args {
		sb.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t'\"\\[]*$") {
			sb.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
		} else {
			sb.WriteString(a)
		}
	}
	return sb.String()
}

// readEach reads every key with get, one settings command a key, its
// output chomped: what gsettings and kreadconfig backends' Read do. The
// first failure ends it.
func readEach(keys []string, get func(key string) (string, error)) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v, err := get(k)
		if err != nil {
			return nil, err
		}
		out[k] = chomp(v)
	}
	return out, nil
}

// chomp drops the one line ending a command puts after a value.
func chomp(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

// lookPath finds a settings tool in PATH.
func lookPath(name string) (string, error) { return exec.LookPath(name) }
