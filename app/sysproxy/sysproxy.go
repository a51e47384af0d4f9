// Package sysproxy points the operating system's proxy setting at Porthole
// and puts back exactly what was there before.
//
// Every place it changes is a named key with a string value (a gsettings
// key, a kioslaverc entry, a macOS service's web proxy, a WinINet option of
// one connection). A [Backend] reads and writes such keys; the [Manager] is
// the same for all of them:
//
//   - Enable reads the previous value of every key it will touch, writes a
//     [Journal] of them (atomically, 0600) and only then applies its own.
//   - Disable puts back the previous value of each key whose current value is
//     still exactly the one Porthole wrote; a key the user or another program
//     changed meanwhile is left alone (and logged). Then the journal goes.
//   - Repair, at start-up, does what Disable does for a journal left behind
//     by a run that never got to Disable (crash, SIGKILL, power loss). The
//     process whose journal is in effect holds a lock on it (path.lock),
//     which the OS drops when that process dies: a journal whose lock is
//     held belongs to a running Porthole and is left alone (ErrBusy).
//
// A backend write that fails is rolled back the same way, so a failure
// leaves the previous settings in place.
package sysproxy

// Backend reads and writes the settings of one kind of system proxy. Keys
// are the backend's own names for the places it touches; values are compared
// byte for byte, so Read must return, after a successful Write, exactly the
// value written (Wanted produces values in that form).
type Backend interface {
	// Name identifies the backend in the journal ("gnome", "kde", ...).
	Name() string
	// Wanted is every key Porthole sets and the value it sets, for a proxy
	// at host:port with the given (already validated) bypass entries.
	Wanted(host string, port int, bypass []string) (map[string]string, error)
	// Read returns the current value of each key. A key whose place no
	// longer exists (a removed network service) is absent from the map.
	Read(keys []string) (map[string]string, error)
	// Write sets the values. It may stop at the first failure, leaving the
	// keys before it written: the Manager rolls those back.
	Write(values map[string]string) error
}
