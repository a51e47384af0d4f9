package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
)

// delayJSON is one entry of a proxy's history (mihomo's DelayHistory).
type delayJSON struct {
	Time  time.Time `json:"time"`
	Delay int       `json:"delay"` // ms; 0: the test failed
}

// proxyJSON is mihomo's Proxy as JSON (adapter.Proxy.MarshalJSON over
// the adapter's own); a group (the GLOBAL selector) adds now, all, hidden
// and icon.
type proxyJSON struct {
	Name        string         `json:"name"`
	Type        string         `json:"type"`
	ID          string         `json:"id"`
	History     []delayJSON    `json:"history"`
	Extra       map[string]any `json:"extra"`
	Alive       bool           `json:"alive"`
	UDP         bool           `json:"udp"`
	UOT         bool           `json:"uot"`
	XUDP        bool           `json:"xudp"`
	TFO         bool           `json:"tfo"`
	MPTCP       bool           `json:"mptcp"`
	SMUX        bool           `json:"smux"`
	Interface   string         `json:"interface"`
	DialerProxy string         `json:"dialer-proxy"`
	RoutingMark int            `json:"routing-mark"`
	// Groups only.
	Now    string   `json:"now,omitempty"`
	All    []string `json:"all,omitempty"`
	Hidden *bool    `json:"hidden,omitempty"`
	Icon   *string  `json:"icon,omitempty"`
}

// maxHistory is how many delay results a proxy keeps, as mihomo does.
const maxHistory = 10

// delays keeps the delay tests' results per proxy name: the history the
// proxies page draws and whether the last test passed.
type delays struct {
	mu   sync.Mutex
	hist map[string][]delayJSON
}

func newDelays() *delays { return &delays{hist: make(map[string][]delayJSON)} }

func (d *delays) add(name string, ms int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := append(d.hist[name], delayJSON{Time: time.Now(), Delay: ms})
	if len(h) > maxHistory {
		h = h[len(h)-maxHistory:]
	}
	d.hist[name] = h
}

// of returns a copy of name's history and whether its last test failed.
func (d *delays) of(name string) (h []delayJSON, failed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h = append([]delayJSON{}, d.hist[name]...)
	return h, len(h) > 0 && h[len(h)-1].Delay == 0
}

func (s *Server) proxy(name, typ string, alive, udp bool) proxyJSON {
	h, failed := s.hist.of(name)
	return proxyJSON{Name: name, Type: typ, History: h, Extra: map[string]any{}, Alive: alive && !failed, UDP: udp}
}

// exitProxy is an exit as a proxy. Its health check measures it
// continuously: that latency is its latest delay (after the delay tests'
// results), and its health says whether it is alive, whatever a test of
// some URL through it gave.
func (s *Server) exitProxy(e Exit) proxyJSON {
	p := s.proxy(e.Name, e.Kind, e.Alive, e.UDP)
	if e.Latency > 0 {
		ms := max(int(e.Latency.Milliseconds()), 1) // 0 would read as a failure
		p.History = append(p.History, delayJSON{Time: time.Now(), Delay: ms})
		if len(p.History) > maxHistory {
			p.History = p.History[len(p.History)-maxHistory:]
		}
		p.Alive = e.Alive
	}
	return p
}

// global is the GLOBAL selector: its members are the exits and DIRECT,
// its choice the exit tunnelled connections take (DIRECT when there is
// no exit, which is where connections go then).
func (s *Server) global(exits []Exit, now string) proxyJSON {
	g := s.proxy(GlobalName, "Selector", true, true)
	for _, e := range exits {
		g.All = append(g.All, e.Name)
	}
	g.All = append(g.All, DirectName)
	g.Now = now
	if g.Now == "" {
		g.Now = g.All[0]
	}
	hidden, icon := false, ""
	g.Hidden, g.Icon = &hidden, &icon
	return g
}

func (s *Server) globalNow() proxyJSON { return s.global(s.opts.Backend.Exits()) }

// proxies is every proxy by name: each exit, DIRECT, REJECT and GLOBAL
// (an exit of a built-in's name is hidden by it).
func (s *Server) proxies() map[string]proxyJSON {
	exits, now := s.opts.Backend.Exits()
	out := make(map[string]proxyJSON, len(exits)+3)
	for _, e := range exits {
		out[e.Name] = s.exitProxy(e)
	}
	out[DirectName] = s.proxy(DirectName, "Direct", true, true)
	out[RejectName] = s.proxy(RejectName, "Reject", true, true)
	out[GlobalName] = s.global(exits, now)
	return out
}

func (s *Server) getProxies(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"proxies": s.proxies()})
}

// nameParam is the {name} of the path, unescaped also when the client
// escaped only part of it (as mihomo does).
func nameParam(r *http.Request) string {
	name := chi.URLParam(r, "name")
	if u, err := url.PathUnescape(name); err == nil {
		name = u
	}
	return name
}

func (s *Server) getProxy(w http.ResponseWriter, r *http.Request) {
	p, ok := s.proxies()[nameParam(r)]
	if !ok {
		writeError(w, http.StatusNotFound, errNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// putProxy selects in a group: {"name": "exit"} makes GLOBAL use it.
func (s *Server) putProxy(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	name := nameParam(r)
	if _, ok := s.proxies()[name]; !ok {
		writeError(w, http.StatusNotFound, errNotFound)
		return
	}
	if name != GlobalName {
		writeError(w, http.StatusBadRequest, "Must be a Selector")
		return
	}
	if err := s.opts.Backend.SelectExit(req.Name); err != nil {
		writeError(w, http.StatusBadRequest, "Selector update error: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// errNotFound is mihomo's message for a proxy or group it does not have.
const errNotFound = "Resource not found"

// delayRequest reads a delay test's query for a proxy or group that is
// known, or answers the error (404 for one that is not, 400 for a query
// it cannot read) and returns ok false.
func delayRequest(w http.ResponseWriter, r *http.Request, known bool) (target string, timeout time.Duration, ok bool) {
	if !known {
		writeError(w, http.StatusNotFound, errNotFound)
		return "", 0, false
	}
	if target, timeout, ok = delayQuery(r); !ok {
		writeError(w, http.StatusBadRequest, errBadRequest)
	}
	return target, timeout, ok
}

// delayQuery reads ?url=&timeout= (ms).
func delayQuery(r *http.Request) (target string, timeout time.Duration, ok bool) {
	q := r.URL.Query()
	ms, err := strconv.ParseInt(q.Get("timeout"), 10, 32)
	target = q.Get("url")
	if err != nil || ms <= 0 || target == "" {
		return "", 0, false
	}
	return target, time.Duration(ms) * time.Millisecond, true
}

// errDelayFailed is mihomo's message for a test that did not answer.
const errDelayFailed = "An error occurred in the delay test"

// testDelay runs one delay test of a proxy (GLOBAL tests its choice) and
// records it. It returns the delay in ms, or an HTTP status and message.
func (s *Server) testDelay(ctx context.Context, name, target string, timeout time.Duration) (int, int, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	via := name
	if name == GlobalName {
		via = s.globalNow().Now
	}
	var d time.Duration
	err := errors.New("REJECT refuses every connection")
	if via != RejectName {
		d, err = s.opts.Backend.Delay(ctx, via, target)
	}
	if ctx.Err() != nil {
		s.hist.add(name, 0)
		return 0, http.StatusGatewayTimeout, "Timeout"
	}
	if err != nil {
		s.hist.add(name, 0)
		return 0, http.StatusServiceUnavailable, errDelayFailed + ": " + err.Error()
	}
	ms := max(int(d.Milliseconds()), 1) // 0 would read as a failure
	s.hist.add(name, ms)
	return ms, 0, ""
}

func (s *Server) proxyDelay(w http.ResponseWriter, r *http.Request) {
	name := nameParam(r)
	_, known := s.proxies()[name]
	target, timeout, ok := delayRequest(w, r, known)
	if !ok {
		return
	}
	ms, status, msg := s.testDelay(r.Context(), name, target, timeout)
	if status != 0 {
		writeError(w, status, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"delay": ms})
}

func (s *Server) getGroups(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"proxies": []proxyJSON{s.globalNow()}})
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	if nameParam(r) != GlobalName {
		writeError(w, http.StatusNotFound, errNotFound)
		return
	}
	writeJSON(w, http.StatusOK, s.globalNow())
}

// groupDelay tests every member of GLOBAL at once and answers the delays
// of those that answered, by name.
func (s *Server) groupDelay(w http.ResponseWriter, r *http.Request) {
	target, timeout, ok := delayRequest(w, r, nameParam(r) == GlobalName)
	if !ok {
		return
	}
	members := s.globalNow().All
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := make(map[string]int, len(members))
	for _, m := range members {
		wg.Go(func() {
			if ms, status, _ := s.testDelay(r.Context(), m, target, timeout); status == 0 {
				mu.Lock()
				out[m] = ms
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, out)
}

func emptyProviders(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"providers": map[string]any{}})
}
