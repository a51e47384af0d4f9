package api

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"porthole/core/outbound"
)

// Clash's modes and Porthole's: "rule" is the rule set, "global" sends
// everything through the GLOBAL selector's exit (Porthole's tunnel mode).
var (
	clashModes    = map[string]string{"direct": "direct", "rule": "rules", "global": "tunnel"}
	portholeModes = map[string]string{"direct": "direct", "rules": "rule", "tunnel": "global"}
)

// clashMode is Porthole's mode in Clash's words.
func clashMode(m string) string {
	if c, ok := portholeModes[m]; ok {
		return c
	}
	return m
}

// tunJSON is the part of mihomo's tun section dashboards read.
type tunJSON struct {
	Enable              bool     `json:"enable"`
	Device              string   `json:"device"`
	Stack               string   `json:"stack"`
	DNSHijack           []string `json:"dns-hijack"`
	AutoRoute           bool     `json:"auto-route"`
	AutoDetectInterface bool     `json:"auto-detect-interface"`
	FileDescriptor      int      `json:"file-descriptor"`
}

type tuicServerJSON struct {
	Enable      bool     `json:"enable"`
	Listen      string   `json:"listen"`
	Token       []string `json:"token"`
	Certificate string   `json:"certificate"`
	PrivateKey  string   `json:"private-key"`
}

// configsJSON is mihomo's config.General as /configs gives it, with
// Porthole's values: one mixed port, no TUN.
type configsJSON struct {
	Port              int            `json:"port"`
	SocksPort         int            `json:"socks-port"`
	RedirPort         int            `json:"redir-port"`
	TProxyPort        int            `json:"tproxy-port"`
	MixedPort         int            `json:"mixed-port"`
	Tun               tunJSON        `json:"tun"`
	TuicServer        tuicServerJSON `json:"tuic-server"`
	SSConfig          string         `json:"ss-config"`
	VmessConfig       string         `json:"vmess-config"`
	Authentication    []string       `json:"authentication"`
	SkipAuthPrefixes  []string       `json:"skip-auth-prefixes"`
	LanAllowedIPs     []string       `json:"lan-allowed-ips"`
	LanDisallowedIPs  []string       `json:"lan-disallowed-ips"`
	AllowLan          bool           `json:"allow-lan"`
	BindAddress       string         `json:"bind-address"`
	InboundTfo        bool           `json:"inbound-tfo"`
	InboundMPTCP      bool           `json:"inbound-mptcp"`
	Mode              string         `json:"mode"`
	UnifiedDelay      bool           `json:"unified-delay"`
	LogLevel          string         `json:"log-level"`
	IPv6              bool           `json:"ipv6"`
	InterfaceName     string         `json:"interface-name"`
	RoutingMark       int            `json:"routing-mark"`
	GeoAutoUpdate     bool           `json:"geo-auto-update"`
	GeoUpdateInterval int            `json:"geo-update-interval"`
	GeodataMode       bool           `json:"geodata-mode"`
	TCPConcurrent     bool           `json:"tcp-concurrent"`
	FindProcessMode   string         `json:"find-process-mode"`
	Sniffing          bool           `json:"sniffing"`
}

func (s *Server) logLevel() slog.Level {
	if s.opts.LogLevel == nil {
		return slog.LevelInfo
	}
	return s.opts.LogLevel.Level()
}

func (s *Server) getConfigs(w http.ResponseWriter, r *http.Request) {
	b := s.opts.Backend
	listen := b.Listen()
	host, _, _ := net.SplitHostPort(listen)
	ip := net.ParseIP(host)
	lan := !(host == "localhost" || ip != nil && ip.IsLoopback())
	bind := host
	if ip != nil && ip.IsUnspecified() {
		bind = "*"
	}
	writeJSON(w, http.StatusOK, configsJSON{
		MixedPort:         portOf(listen),
		Tun:               tunJSON{Stack: "system", DNSHijack: []string{}},
		TuicServer:        tuicServerJSON{Token: []string{}},
		Authentication:    []string{},
		SkipAuthPrefixes:  []string{},
		LanAllowedIPs:     []string{},
		LanDisallowedIPs:  []string{},
		AllowLan:          lan,
		BindAddress:       bind,
		Mode:              clashMode(b.Mode()),
		LogLevel:          clashLevel(s.logLevel()),
		IPv6:              true,
		GeoUpdateInterval: 24,
		FindProcessMode:   "always", // every connection's program is looked up
	})
}

// patchConfigs takes mode and log-level; the other fields a dashboard may
// send (ports, allow-lan, tun) are Porthole's settings window's, and are
// ignored as mihomo ignores those it cannot change. The mode is kept in
// the settings file; the log level holds for the running app, as in
// mihomo.
func (s *Server) patchConfigs(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Mode     *string `json:"mode"`
		LogLevel *string `json:"log-level"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	mode, okMode := lookupName(clashModes, req.Mode)
	level, okLevel := lookupName(clashLevels, req.LogLevel)
	if !okMode || !okLevel {
		writeError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	if mode != "" && mode != s.opts.Backend.Mode() {
		if _, err := outbound.ParseMode(mode); err != nil {
			writeError(w, http.StatusBadRequest, "Porthole cannot use mode "+clashMode(mode)+": "+err.Error())
			return
		}
		if err := s.opts.Backend.SetMode(mode); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if req.LogLevel != nil && s.opts.LogLevel != nil {
		s.opts.LogLevel.Set(level)
	}
	w.WriteHeader(http.StatusNoContent)
}

// lookupName is a field's value in a table of the names Clash sends, any
// case: the zero value and true when the field is absent, false when it
// names nothing in the table.
func lookupName[V any](table map[string]V, name *string) (V, bool) {
	if name == nil {
		var zero V
		return zero, true
	}
	v, ok := table[strings.ToLower(*name)]
	return v, ok
}
