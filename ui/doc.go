// Package ui is Porthole's Fyne GUI: the tray icon and its menu (or, on a
// desktop without a tray, the main window), the connections window (the
// inspector: live tables fed by a bridge that subscribes to the registry
// only while the window shows), the settings window and About. It is the
// only package that imports Fyne; it changes the proxy only through
// app.Controller and reads connections as the registry's immutable
// records. Every change from another goroutine reaches the widgets through
// fyne.Do. See docs/ARCHITECTURE.md.
package ui
