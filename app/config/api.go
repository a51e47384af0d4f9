package config

import (
	"net/url"

	"porthole/core"
)

// DefaultAPIListen is where the control API listens unless told: Clash's
// usual external-controller address, so dashboards find it.
const DefaultAPIListen = "127.0.0.1:9090"

// API is the control API's settings (the "api" object of the file).
type API struct {
	// Listen is host:port; "" turns the API off.
	Listen string `json:"listen"`
	// Secret is what callers must present (Bearer, or ?token= on a
	// WebSocket). Generated and saved at the first start when missing.
	Secret string `json:"secret,omitempty"`
	// UI is a folder holding a built dashboard, served at /ui/.
	UI string `json:"ui,omitempty"`
	// DashboardURL is the dashboard "Open dashboard" opens; "": the
	// hosted metacubexd.
	DashboardURL string `json:"dashboard_url,omitempty"`
}

// validate checks the API's fields; the errors name "api".
func (a API) validate() error {
	if a.Listen != "" {
		if err := checkListen("api", "api.listen", a.Listen, ` ("" turns the API off)`); err != nil {
			return err
		}
	}
	if a.DashboardURL != "" {
		u, err := url.Parse(a.DashboardURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("api", "api.dashboard_url: %q is not an http(s) URL", a.DashboardURL)
		}
	}
	return nil
}

// APIBeyondLoopback reports whether addr (host:port) can be reached from
// other machines: any host but localhost and loopback addresses.
func APIBeyondLoopback(addr string) bool { return !core.IsLoopbackAddr(addr) }
