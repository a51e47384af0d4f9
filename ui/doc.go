// Package ui will hold Porthole's Fyne GUI: the tray icon and menu, the
// connection inspector and the settings window (issue 5). It is the only
// package besides main that may import Fyne; it reads the core through
// app/ and the registry's read-only types.
package ui
