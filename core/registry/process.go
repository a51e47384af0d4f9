package registry

// Process is what is known about the program on this machine that opened a
// connection. It is recorded once per connection (Conn.SetProcess) and shared
// by every Info copied afterwards, so it is immutable once set: never modify
// a *Process taken from an Info.
//
// A known process has PID > 0 and Unknown == "". An unknown one says why in
// Unknown, a short reason for a person ("remote client", "process exited",
// "no permission", "not supported on this OS"); the other fields are then
// zero except UID, which may still be known (the socket's owner).
type Process struct {
	PID        int
	Name       string // short program name, e.g. "firefox", "git-remote-https"
	Path       string // executable path, when readable
	UID        int    // owner of the socket; -1 when unknown
	User       string // user name of UID, when it resolves
	PPID       int    // parent process, 0 when unknown
	ParentName string // parent's short name, when readable
	Unknown    string // why no program is known; "" when PID is
}

// Known reports whether the program was found.
func (p *Process) Known() bool { return p != nil && p.PID > 0 && p.Unknown == "" }

// Label is the name a person sees in a list: the program's name, or
// "unknown" (nil, or not found).
func (p *Process) Label() string {
	if p.Known() && p.Name != "" {
		return p.Name
	}
	return "unknown"
}
