package procinfo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
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
