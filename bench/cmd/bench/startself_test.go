package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the processes startSelf starts (it is
// os.Executable here), as the bench binary is.
func TestMain(m *testing.M) {
	if code, ok := subcommand(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestStartSelf starts the origin, the plain CONNECT proxy and a
// reference tunnel from the binary itself and carries an ECHO through
// the proxy and through the tunnel to the origin.
func TestStartSelf(t *testing.T) {
	// A -race child otherwise waits a second at exit.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	origin, err := startOriginProc()
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Stop()
	plain, err := startPlain()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Stop()
	ref, err := startRef(muxSmux, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Stop()
	for _, proxy := range []*proc{plain, ref.client} {
		if err := echoThrough(proxy.addr, origin.addr); err != nil {
			t.Errorf("%s: %v", proxy.name, err)
		}
	}
}

// echoThrough sends ECHO to origin through the CONNECT proxy at proxy and
// checks that a line comes back.
func echoThrough(proxy, origin string) error {
	c, err := net.DialTimeout("tcp", proxy, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", origin, origin); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200") {
		return fmt.Errorf("CONNECT: %q, %v", status, err)
	}
	for end := false; !end; {
		line, err := r.ReadString('\n') // the deadline bounds the loop
		if err != nil {
			return err
		}
		end = line == "\r\n"
	}
	if _, err := io.WriteString(c, "ECHO\nhello\n"); err != nil {
		return err
	}
	if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
		return fmt.Errorf("echo: %q, %v", line, err)
	}
	return nil
}
