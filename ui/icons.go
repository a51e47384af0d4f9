package ui

import (
	_ "embed"

	"fyne.io/fyne/v2"
)

// The tray icons, one per state. Their SVG sources live in ui/icons/ rather
// than assets/: go:embed cannot reach outside the package directory, and a
// copy made by a generate step could drift from its source unnoticed. Each
// is a porthole: a dark rim with a light halo (visible on light and on dark
// panels) around coloured glass with one bold white glyph, so colour and
// shape both tell the states apart at 16 px.
var (
	//go:embed icons/off.svg
	iconOffSVG []byte
	//go:embed icons/direct.svg
	iconDirectSVG []byte
	//go:embed icons/tunnel.svg
	iconTunnelSVG []byte
	//go:embed icons/error.svg
	iconErrorSVG []byte

	iconOff    = fyne.NewStaticResource("porthole-off.svg", iconOffSVG)
	iconDirect = fyne.NewStaticResource("porthole-direct.svg", iconDirectSVG)
	iconTunnel = fyne.NewStaticResource("porthole-tunnel.svg", iconTunnelSVG)
	iconError  = fyne.NewStaticResource("porthole-error.svg", iconErrorSVG)
)

// trayIconKind is which of the four icons shows the app's state.
type trayIconKind uint8

const (
	trayIconOff trayIconKind = iota
	trayIconDirect
	trayIconTunnel
	trayIconError
)

// resource is the icon's image.
func (k trayIconKind) resource() fyne.Resource {
	switch k {
	case trayIconDirect:
		return iconDirect
	case trayIconTunnel:
		return iconTunnel
	case trayIconError:
		return iconError
	}
	return iconOff
}
