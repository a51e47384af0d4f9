package procinfo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"porthole/internal/childproc"
)

// childEnv, when set, makes the test binary a child process of a test
// (see child) instead of running tests: a real, separate program whose
// pid, name and path the lookup must find.
const (
	childEnv     = "PROCINFO_TEST_CHILD"
	childArgsEnv = "PROCINFO_TEST_ARGS"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode, strings.Fields(os.Getenv(childArgsEnv))))
	}
	goleak.VerifyTestMain(m)
}

// child runs one child mode:
//   - hold ADDR: connect to ADDR, print the connection's local address, and
//     keep it open until stdin closes;
//   - exit ADDR: connect, print the local address and exit at once;
//   - holdmany ADDR N: hold N connections to ADDR, their local addresses
//     on one line;
//   - lookup LOCAL REMOTE: look the accepted connection LOCAL<-REMOTE up
//     and print the Process as JSON.
func child(mode string, args []string) int {
	switch mode {
	case "hold", "exit":
		c, err := net.Dial("tcp", args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(c.LocalAddr())
		if mode == "exit" {
			return 0 // the kernel closes c
		}
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		_ = c.Close()
		return 0
	case "holdmany":
		n, err := strconv.Atoi(args[1])
		if err != nil || n <= 0 || n > 1000 {
			return 2
		}
		var addrs []string
		for range n {
			c, err := net.Dial("tcp", args[0])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer c.Close()
			addrs = append(addrs, c.LocalAddr().String())
		}
		fmt.Println(strings.Join(addrs, " "))
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		return 0
	case "lookup":
		r := New()
		defer r.Close()
		p := r.LookupAddrs(netip.MustParseAddrPort(args[0]), netip.MustParseAddrPort(args[1]))
		if err := json.NewEncoder(os.Stdout).Encode(p); err != nil {
			return 1
		}
		return 0
	}
	return 2
}

// startChild starts the test binary as a child in mode with args; its
// first line of output is returned.
func startChild(t testing.TB, bin, mode string, args []string, cred ...string) (*exec.Cmd, io.WriteCloser, string) {
	t.Helper()
	name, argv := bin, []string{"-test.run=^$"}
	if len(cred) > 0 {
		name, argv = cred[0], append(append(cred[1:], bin), argv...)
	}
	cmd := exec.Command(name, argv...)
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childArgsEnv+"="+strings.Join(args, " "))
	stdin, out := childproc.Pipes(t, cmd)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait() // the exit status of a child told to go does not matter
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child %s: %v", mode, err)
	}
	return cmd, stdin, strings.TrimSpace(line)
}

func self(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func listen(t testing.TB, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}
