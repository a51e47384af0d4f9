package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"porthole/internal/chantest"
)

// connectBus opens a connection of the test's own to the bus at address.
func connectBus(t *testing.T, address string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(address)
	if err != nil {
		t.Fatalf("connecting to the private bus: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() }) // the bus may be gone already; nothing to report
	return conn
}

// fakeWatcher is the StatusNotifierWatcher a desktop's panel runs, cut to
// what a tray item needs: it owns the name, says a host is registered, and
// reports each item that registers.
type fakeWatcher struct {
	items chan registeredItem
}

// registeredItem is a RegisterStatusNotifierItem call: the item's bus
// name and object path, and when it came.
type registeredItem struct {
	Sender, Path string
	At           time.Time
}

// RegisterStatusNotifierItem is the method tray items call. godbus fills
// sender with the caller's unique bus name.
func (w *fakeWatcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	path := service
	if !strings.HasPrefix(path, "/") { // a bus name was given: the default path
		path = "/StatusNotifierItem"
	}
	select {
	case w.items <- registeredItem{Sender: string(sender), Path: path, At: time.Now()}:
	default: // a re-registration nobody waits for
	}
	return nil
}

// RegisterStatusNotifierHost is what a panel calls; nothing to do.
func (w *fakeWatcher) RegisterStatusNotifierHost(service string) *dbus.Error { return nil }

// startFakeWatcher exports the watcher on conn and takes its bus name.
// hostRegistered is its IsStatusNotifierHostRegistered property.
// waitItem returns the next tray item registered, failing the test
// after 60 s.
func (w *fakeWatcher) waitItem(t *testing.T) registeredItem {
	t.Helper()
	return chantest.Within(t, 60*time.Second, "a tray item registered by the GUI", w.items)
}

func startFakeWatcher(t *testing.T, conn *dbus.Conn, hostRegistered bool) *fakeWatcher {
	t.Helper()
	w := &fakeWatcher{items: make(chan registeredItem, 4)}
	const path = "/StatusNotifierWatcher"
	if err := conn.Export(w, path, statusNotifierWatcher); err != nil {
		t.Fatal(err)
	}
	_, err := prop.Export(conn, path, prop.Map{statusNotifierWatcher: {
		"IsStatusNotifierHostRegistered": {Value: hostRegistered, Emit: prop.EmitFalse},
		"ProtocolVersion":                {Value: int32(0), Emit: prop.EmitFalse},
		"RegisteredStatusNotifierItems":  {Value: []string{}, Emit: prop.EmitFalse},
	}})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(statusNotifierWatcher, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("taking %s: %v (reply %v)", statusNotifierWatcher, err, reply)
	}
	return w
}

// menuNode is one com.canonical.dbusmenu item as a client sees it.
type menuNode struct {
	ID       int32
	Label    string
	Enabled  bool
	Checked  bool
	Children []menuNode
}

// find returns the first item, depth first, whose label starts with
// prefix.
func (n menuNode) find(prefix string) (menuNode, bool) {
	for _, c := range n.Children {
		if c.Label != "" && strings.HasPrefix(c.Label, prefix) {
			return c, true
		}
		if m, ok := c.find(prefix); ok {
			return m, true
		}
	}
	return menuNode{}, false
}

// labels is the top-level items' labels, separators left out.
func (n menuNode) labels() []string {
	var out []string
	for _, c := range n.Children {
		if c.Label != "" {
			out = append(out, c.Label)
		}
	}
	return out
}

// readMenu reads the whole menu of the item through GetLayout.
func readMenu(obj dbus.BusObject) (menuNode, error) {
	var rev uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	err := obj.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root)
	if err != nil {
		return menuNode{}, fmt.Errorf("GetLayout: %w", err)
	}
	return toMenuNode(root.ID, root.Props, root.Children)
}

func toMenuNode(id int32, props map[string]dbus.Variant, children []dbus.Variant) (menuNode, error) {
	n := menuNode{ID: id, Enabled: true}
	if v, ok := props["label"]; ok {
		n.Label, _ = v.Value().(string)
	}
	if v, ok := props["enabled"]; ok {
		n.Enabled, _ = v.Value().(bool)
	}
	if v, ok := props["toggle-state"]; ok {
		s, _ := v.Value().(int32)
		n.Checked = s == 1
	}
	for _, c := range children {
		fields, ok := c.Value().([]any)
		if !ok || len(fields) != 3 {
			return n, fmt.Errorf("menu item %d: child of type %T", id, c.Value())
		}
		cid, _ := fields[0].(int32)
		cprops, _ := fields[1].(map[string]dbus.Variant)
		cchildren, _ := fields[2].([]dbus.Variant)
		child, err := toMenuNode(cid, cprops, cchildren)
		if err != nil {
			return n, err
		}
		n.Children = append(n.Children, child)
	}
	return n, nil
}
