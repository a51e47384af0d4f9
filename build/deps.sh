#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that building and testing Porthole need.
# Idempotent: does nothing (not even apt-get update) when all are present.
# `bash build/deps.sh dist` also installs what `make dist` needs.
set -euo pipefail

# ---- Packages needed by the build and the tests (add GUI packages here) ----
PACKAGES=(
	ca-certificates
	curl # tests drive the proxy with real curl
	dbus-bin    # app/sysproxy: dbus-send (KDE reparse signal) and dbus-monitor in its test
	dbus-daemon # app/sysproxy: a private session bus for the KDE signal test
	desktop-file-utils # app/autostart checks its .desktop file with desktop-file-validate (skipped without it)
	gcc
	gsettings-desktop-schemas # app/sysproxy: the org.gnome.system.proxy schema its GNOME test sets for real
	git
	libc6-dev
	libglib2.0-bin   # app/sysproxy: gsettings, run against a keyfile in a temporary HOME
	libkf5config-bin # app/sysproxy: kwriteconfig5/kreadconfig5 for the KDE (kioslaverc) test
	make
	nginx-light # core's tunnel test runs the exit behind nginx as a reverse proxy (skipped without it)
	tinyproxy  # core/e2e exits test: a real upstream HTTP proxy exit (skipped without it)
	microsocks # core/e2e exits test: a real upstream SOCKS5 proxy exit (skipped without it)
	pkg-config # Fyne (ui/): cgo build of go-gl/glfw
	libgl-dev libegl-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev libwayland-dev libxkbcommon-dev
	xvfb dbus-x11 imagemagick x11-utils # GUI tests: a real X server, a private session bus, screenshots, xwininfo
)
# ---- Packages `make dist` needs on top (bash build/deps.sh dist) ----
DIST_PACKAGES=(
	xz-utils # fyne package's tar.xz, dpkg-deb -Zxz
	librsvg2-bin # rsvg-convert: the PNG icons from assets/porthole.svg
	dpkg-dev # dpkg-shlibdeps: the .deb's Depends
	gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 # the Windows cgo cross-build; objdump for its checks
	nsis # makensis: the Windows installer
	osslsigncode openssl # Authenticode signing (CI: a throwaway self-signed certificate)
	icoutils # wrestool: the check that porthole.exe carries its icon
	file
	appstream # appstreamcli validate
	systemd # systemd-analyze verify on build/porthole-exit.service (no daemon runs)
)
# ---------------------------------------------------------------------------

case "${1:-}" in
"") ;;
dist) PACKAGES+=("${DIST_PACKAGES[@]}") ;;
*)
	echo "usage: bash build/deps.sh [dist]" >&2
	exit 2
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: dpkg-query not found; not a Debian-based system." >&2
	echo "deps.sh: install the equivalents of: ${PACKAGES[*]}" >&2
	exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [[ "$status" != "install ok installed" ]]; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

echo "deps.sh: missing packages: ${missing[*]}" >&2

if [[ "$(id -u)" == 0 ]]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo=(sudo -n)
else
	echo "deps.sh: not root and no passwordless sudo; please run:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y --no-install-recommends "${missing[@]}"
