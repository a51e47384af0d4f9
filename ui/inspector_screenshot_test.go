package ui

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"image"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/widget"
	"golang.org/x/net/proxy"

	"porthole/app"
)

// trafficMix is real traffic through a running Porthole on loopback: long
// downloads over plain HTTP and CONNECT, a long SOCKS5 upload, short
// requests that end, and one whose target refuses.
type trafficMix struct {
	stop chan struct{}
	wg   sync.WaitGroup
	errs chan error
}

func startTraffic(t *testing.T, proxyAddr string) *trafficMix {
	t.Helper()
	mix := &trafficMix{stop: make(chan struct{}), errs: make(chan error, 16)}
	chunk := bytes.Repeat([]byte("porthole "), 2000) // 18 kB
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			_, _ = io.WriteString(w, "short answer")
			return
		}
		tick := time.NewTicker(40 * time.Millisecond) // paces the traffic; nothing waits on it
		defer tick.Stop()
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-mix.stop:
				return
			case <-r.Context().Done():
				return
			}
		}
	})
	plain := httptest.NewServer(stream)
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(stream)
	t.Cleanup(secure.Close)
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })

	pu := &url.URL{Scheme: "http", Host: proxyAddr}
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(pu),
		TLSClientConfig: &tls.Config{RootCAs: secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs},
	}}
	t.Cleanup(client.CloseIdleConnections)

	download := func(u string) {
		defer mix.wg.Done()
		resp, err := client.Get(u)
		if err != nil {
			mix.errs <- err
			return
		}
		defer func() { _ = resp.Body.Close() }()
		_, _ = io.Copy(io.Discard, resp.Body) // ends when the server stops the stream
	}
	mix.wg.Add(3)
	go download(plain.URL + "/stream")
	go download(secure.URL + "/stream")
	go download(secure.URL + "/stream")

	// The sink reads what the SOCKS5 upload sends.
	mix.wg.Add(1)
	go func() {
		defer mix.wg.Done()
		c, err := sink.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		_, _ = io.Copy(io.Discard, c)
	}()
	mix.wg.Add(1)
	go func() {
		defer mix.wg.Done()
		dialer, err := proxy.SOCKS5("tcp", proxyAddr, nil, proxy.Direct)
		if err != nil {
			mix.errs <- err
			return
		}
		c, err := dialer.(proxy.ContextDialer).DialContext(context.Background(), "tcp", sink.Addr().String())
		if err != nil {
			mix.errs <- err
			return
		}
		defer func() { _ = c.Close() }()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := c.Write(chunk[:6000]); err != nil {
				mix.errs <- err
				return
			}
			select {
			case <-tick.C:
			case <-mix.stop:
				return
			}
		}
	}()

	// Short requests that end, one connection each, and one the target
	// refuses.
	short := &http.Client{Transport: &http.Transport{
		Proxy:             http.ProxyURL(pu),
		TLSClientConfig:   client.Transport.(*http.Transport).TLSClientConfig,
		DisableKeepAlives: true,
	}}
	for _, u := range []string{plain.URL, secure.URL, plain.URL, secure.URL, plain.URL} {
		resp, err := short.Get(u + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := refused.Addr().String()
	_ = refused.Close()
	if resp, err := client.Get("http://" + dead + "/"); err == nil {
		_ = resp.Body.Close()
	}
	client.CloseIdleConnections() // the short ones move to Closed
	t.Cleanup(func() {
		close(mix.stop)
		_ = sink.Close() // the sink's Accept, if the upload never came
		mix.wg.Wait()
		close(mix.errs)
		for err := range mix.errs {
			t.Errorf("traffic: %v", err)
		}
	})
	return mix
}

// TestInspectorScreenshot renders the inspector with Fyne's software
// painter (the test driver's window: no display needed) while real traffic
// flows through a real engine on loopback, and checks the picture. It is
// written to the test's temporary directory, or to docs/screenshots/ with
// PORTHOLE_UPDATE_SCREENSHOTS=1 (how the committed ones are made).
func TestInspectorScreenshot(t *testing.T) {
	checkLeaks(t)
	ctl := app.NewController(loopbackConfig(), nil, testLogger(t))
	t.Cleanup(func() {
		if err := ctl.Close(); err != nil && !errors.Is(err, app.ErrControllerClosed) {
			t.Errorf("closing the controller: %v", err)
		}
	})
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	i, tt := openInspector(t, ctl.Registry())
	startTraffic(t, ctl.Status().Addr)
	// Real programs beside the test's own clients, for the App column.
	origin := startTrickleOrigin(t, 3000, 100*time.Millisecond)
	programs := startProgramClients(t, ctl.Status().Addr, origin.addr)

	// Enough stats ticks (one a second) for the graph to show a line.
	tt.runUntil(t, "traffic in the view", func() bool {
		v := tt.last()
		return v != nil && len(v.samples) >= 8 && liveCount(v) >= 4+programs && closedCount(v) >= 5 && v.totals.DownRate > 0 &&
			(programs == 0 || hasApps(v.rows[tabActive], "curl", "python"))
	})
	v := tt.last()
	var stream *connRow
	for _, r := range v.rows[tabActive] {
		if stream == nil || r.Down > stream.Down {
			stream = r
		}
	}
	i.selectRow(stream)
	var failed *connRow
	for _, r := range v.rows[tabClosed] {
		if r.Err != nil && r.Established.IsZero() { // the refused dial
			failed = r
		}
	}
	if failed == nil {
		t.Fatal("no closed connection that failed to connect (the refused target)")
	}

	save := func(name string) {
		t.Helper()
		// The GL driver lays out again when a label's text changes its
		// size; the software canvas does not, so lay out before capturing.
		i.win.Content().Refresh()
		img := i.win.Canvas().Capture()
		if got, want := img.Bounds().Size(), image.Pt(1280, 760); got != want {
			t.Errorf("%s is %v, want %v", name, got, want)
		}
		n := countColours(img, 1000)
		if n < 64 {
			t.Errorf("%s has %d colours; a rendered table with a graph has many", name, n)
		}
		saveScreenshot(t, name, img, n)
	}
	save("inspector.png")
	i.tabs.SelectIndex(int(tabClosed))
	i.selectRow(failed)
	save("inspector-closed.png")

	// The Apps tab with a program selected: the filter shows its
	// connections.
	i.tabs.SelectIndex(int(tabApps))
	if len(i.apps.rows) == 0 {
		t.Fatal("the Apps tab is empty")
	}
	row := 0 // curl's, when it ran: a real program's row rather than the test's own
	for n, a := range i.apps.rows {
		if a.name == "curl" {
			row = n
		}
	}
	i.apps.table.Select(widget.TableCellID{Row: row, Col: int(appColName)})
	save("inspector-apps.png")
}
