package api

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"porthole/core/registry"
)

// connJSON is one connection as mihomo's /connections gives it
// (tunnel/statistic.TrackerInfo). Dashboards read these fields without
// checking them: every one is always present with its Clash type.
type connJSON struct {
	ID          string       `json:"id"`
	Metadata    metadataJSON `json:"metadata"`
	Upload      int64        `json:"upload"`
	Download    int64        `json:"download"`
	Start       time.Time    `json:"start"`
	Chains      []string     `json:"chains"` // never empty: the innermost proxy first
	Rule        string       `json:"rule"`
	RulePayload string       `json:"rulePayload"`
}

// metadataJSON is mihomo's constant.Metadata as JSON: every string field
// present ("" when unknown), ports as strings (`,string` there).
type metadataJSON struct {
	Network           string   `json:"network"`
	Type              string   `json:"type"`
	SourceIP          string   `json:"sourceIP"`
	DestinationIP     string   `json:"destinationIP"`
	SourceGeoIP       []string `json:"sourceGeoIP"`
	DestinationGeoIP  []string `json:"destinationGeoIP"`
	SourceIPASN       string   `json:"sourceIPASN"`
	DestinationIPASN  string   `json:"destinationIPASN"`
	SourcePort        string   `json:"sourcePort"`
	DestinationPort   string   `json:"destinationPort"`
	InboundIP         string   `json:"inboundIP"`
	InboundPort       string   `json:"inboundPort"`
	InboundName       string   `json:"inboundName"`
	InboundUser       string   `json:"inboundUser"`
	Host              string   `json:"host"`
	DNSMode           string   `json:"dnsMode"`
	UID               uint32   `json:"uid"`
	Process           string   `json:"process"`
	ProcessPath       string   `json:"processPath"`
	SpecialProxy      string   `json:"specialProxy"`
	SpecialRules      string   `json:"specialRules"`
	RemoteDestination string   `json:"remoteDestination"`
	DSCP              uint8    `json:"dscp"`
	SniffHost         string   `json:"sniffHost"`
}

// closedJSON is a finished connection in /porthole/connections/closed:
// the same id and metadata as /connections gave it, and how it ended.
type closedJSON struct {
	connJSON
	End         time.Time `json:"end,omitzero"` // absent while live
	CloseReason string    `json:"closeReason"`  // "" for a clean close
}

// snapshotJSON is mihomo's statistic.Snapshot.
type snapshotJSON struct {
	DownloadTotal int64      `json:"downloadTotal"`
	UploadTotal   int64      `json:"uploadTotal"`
	Connections   []connJSON `json:"connections"` // never null
	Memory        uint64     `json:"memory"`
}

var noGeo = []string{} // encodes as [], never null

// inbound is the mixed port's address, split once per response.
type inbound struct {
	ip, port string
}

func inboundOf(listen string) inbound {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return inbound{}
	}
	return inbound{ip: host, port: port}
}

// connOf turns a registry record into mihomo's shape.
func connOf(in registry.Info, ib inbound) connJSON {
	c := connJSON{
		ID:       in.ID.String(),
		Metadata: metadataOf(in, ib),
		Upload:   in.Up,
		Download: in.Down,
		Start:    in.Start,
	}
	c.Chains = chainsOf(in)
	c.Rule, c.RulePayload = connRule(in.Rule)
	return c
}

// chainsOf says which proxies carried a connection, innermost first as
// mihomo lists them: the exit, then GLOBAL when the exits' policy picked
// it (mihomo's [node, group]); the exit alone when a rule named it (a
// rule naming a proxy, [node]); DIRECT for direct and bypassed ones,
// REJECT for rejected ones. Until the dial has picked an exit (Info.Exit
// is set before Established) a policy's connection shows [GLOBAL].
func chainsOf(in registry.Info) []string {
	switch in.Route {
	case registry.RouteTunnel:
		_, named, _ := strings.Cut(in.Rule.Action, ":") // "tunnel:NAME": a rule named the exit
		switch {
		case named != "" && in.Exit != "":
			return []string{in.Exit}
		case named != "":
			return []string{named}
		case in.Exit != "":
			return []string{in.Exit, GlobalName}
		}
		return []string{GlobalName}
	case registry.RouteReject:
		return []string{RejectName}
	}
	return []string{DirectName}
}

func metadataOf(in registry.Info, ib inbound) metadataJSON {
	m := metadataJSON{
		Network:          in.Network,
		Type:             clashType(in.Proto),
		SourceGeoIP:      noGeo,
		DestinationGeoIP: noGeo,
		InboundIP:        ib.ip,
		InboundPort:      ib.port,
		InboundName:      "mixed",
		DNSMode:          "normal",
	}
	if m.Network == "" {
		m.Network = "tcp"
	}
	if host, port, err := net.SplitHostPort(in.Client); err == nil {
		m.SourceIP, m.SourcePort = host, port
	}
	if host, port, err := net.SplitHostPort(in.Target); err == nil {
		m.DestinationPort = port
		if a, err := netip.ParseAddr(host); err == nil {
			m.DestinationIP = a.Unmap().String()
		} else {
			m.Host = host
		}
	}
	if in.Remote != "" {
		host := in.Remote
		if h, _, err := net.SplitHostPort(in.Remote); err == nil {
			host = h
		}
		m.RemoteDestination = host
		if a, err := netip.ParseAddr(host); err == nil && m.DestinationIP == "" {
			m.DestinationIP = a.Unmap().String()
		}
	}
	if p := in.Process; p != nil {
		if p.Known() {
			m.Process, m.ProcessPath = p.Name, p.Path
		}
		if p.UID >= 0 {
			m.UID = uint32(p.UID)
		}
	}
	return m
}

// clashType is the inbound type as mihomo names it: a CONNECT is "HTTPS",
// a forwarded absolute-URI request "HTTP".
func clashType(p registry.Proto) string {
	switch p {
	case registry.ProtoHTTP:
		return "HTTP"
	case registry.ProtoConnect:
		return "HTTPS"
	case registry.ProtoSOCKS5:
		return "Socks5"
	case registry.ProtoSOCKS4:
		return "Socks4"
	}
	return "Unknown"
}

func closedOf(in registry.Info, ib inbound) closedJSON {
	c := closedJSON{connJSON: connOf(in, ib), End: in.End}
	if in.Err != nil {
		c.CloseReason = in.Err.Error()
	}
	return c
}

// portOf is the port of a host:port, 0 when there is none.
func portOf(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0
	}
	return n
}
