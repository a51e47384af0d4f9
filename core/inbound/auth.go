package inbound

import (
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// Auth is the username and password clients must give (SOCKS5 RFC 1929,
// HTTP Proxy-Authorization Basic). A nil *Auth lets everyone in.
type Auth struct {
	Username, Password string
}

// check compares in constant time, both fields always.
func (a *Auth) check(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(a.Username))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(a.Password))
	return u&p == 1
}

// checkProxyAuthorization checks an HTTP Proxy-Authorization header value.
func (a *Auth) checkProxyAuthorization(v string) bool {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	return ok && a.check(user, pass)
}
