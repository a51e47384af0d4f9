#!/usr/bin/env bash
# make dist: builds Porthole's installable artifacts into dist/, then checks
# them (build/dist-check.sh). Run `bash build/deps.sh dist` first (make dist
# does). Each binary is built once:
#
#   porthole-V-linux-amd64.tar.xz        fyne package: binary, .desktop, icons, metainfo, Makefile
#   porthole_D_amd64.deb                 the same files under /usr, Depends from dpkg-shlibdeps
#   porthole-V-windows-amd64.exe         cgo cross-build with mingw-w64: GUI subsystem, icon, version info
#   porthole-V-windows-amd64-setup.exe   NSIS installer: Program Files, Start menu, uninstaller
#   porthole-exit-V-{linux-amd64,linux-arm64,windows-amd64.exe}   static (CGO_ENABLED=0)
#   porthole-exit_D_{amd64,arm64}.deb    /usr/bin/porthole-exit and the systemd unit
#   SHA256SUMS
#
# V is `git describe` (what --version prints), D its Debian form
# (build/dist-version.sh). Windows files are signed when
# PORTHOLE_SIGN_PKCS12 is set (build/windows/sign.sh); PORTHOLE_SIGN_SELF=1
# signs with a throwaway self-signed certificate, as CI does, to prove the
# step works.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GO=${GO:-go}
FYNE_TOOLS=fyne.io/tools/cmd/fyne@v1.7.4
APPID=app.porthole.Porthole
ICON_SIZES=(16 24 32 48 64 128 256 512)
OUT=$ROOT/dist
# shellcheck source=build/dist-version.sh
source "$ROOT/build/dist-version.sh"
# shellcheck source=build/linux/deb.sh
source "$ROOT/build/linux/deb.sh"
dist_versions

WORK=$(mktemp -d "${TMPDIR:-/tmp}/porthole-dist.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s  [%ds]\n' "$*" "$SECONDS"; }

echo "dist: version $VERSION (packages: $NUMVER build $BUILDNUM, Debian $DEBVER)"
rm -rf "$OUT"
mkdir -p "$OUT"

step "tools: fyne CLI ($FYNE_TOOLS, into a temporary GOBIN)"
GOBIN="$WORK/gobin" "$GO" install "$FYNE_TOOLS"
FYNE=$WORK/gobin/fyne

if [[ "${PORTHOLE_SIGN_SELF:-}" == 1 && -z "${PORTHOLE_SIGN_PKCS12:-}" ]]; then
	step "a throwaway self-signed code-signing certificate"
	openssl rand -hex 16 >"$WORK/sign.pass"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -days 2 -nodes \
		-subj "/CN=Porthole CI throwaway signing certificate" \
		-addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=codeSigning" \
		-keyout "$WORK/sign.key" -out "$WORK/sign.crt"
	openssl pkcs12 -export -inkey "$WORK/sign.key" -in "$WORK/sign.crt" \
		-passout "file:$WORK/sign.pass" -out "$WORK/sign.p12"
	export PORTHOLE_SIGN_PKCS12=$WORK/sign.p12 PORTHOLE_SIGN_PASSWORD_FILE=$WORK/sign.pass
	export PORTHOLE_SIGN_CAFILE=$WORK/sign.crt # what dist-check verifies against
fi
SIGN=$ROOT/build/windows/sign.sh

step "icons from assets/porthole.svg"
mkdir -p "$WORK/icons"
for s in "${ICON_SIZES[@]}"; do
	rsvg-convert -w "$s" -h "$s" "$ROOT/assets/porthole.svg" -o "$WORK/icons/$s.png"
done
convert "$WORK/icons/16.png" "$WORK/icons/24.png" "$WORK/icons/32.png" \
	"$WORK/icons/48.png" "$WORK/icons/256.png" "$WORK/icons/porthole.ico"

# fyne package writes into the source directory while it works (a metadata
# .go file, fyne.syso, tmp-pkg/, the binary) and bumps Build in FyneApp.toml:
# it gets a copy of the tree, so nothing appears in the working tree, not
# even briefly for a concurrent go build.
# -trimpath (fyne's --release) keeps the build cache shared with the tree.
step "source snapshot for fyne package"
mkdir -p "$WORK/src"
tar -C "$ROOT" --exclude=./.git --exclude=./bin --exclude=./dist --exclude=./bench/out -cf - . |
	tar -C "$WORK/src" -xf -

# fyne_package ICON ARGS...: fyne passes GOFLAGS' -ldflags= on to go build
# (adding -H=windowsgui and -s -w itself); the value may not contain
# spaces, hence -X=.
fyne_package() {
	local icon=$1
	shift
	(cd "$WORK/src" && GOFLAGS="${GOFLAGS:-} -ldflags=-X=main.version=$VERSION" \
		"$FYNE" package --release --app-version "$NUMVER" --app-build "$BUILDNUM" \
		--icon "$icon" "$@")
}

step "linux/amd64: fyne package (cgo; the first build takes minutes)"
# Its tar.xz is unpacked and completed below: compress it fast.
XZ_OPT="-1 -T0" fyne_package "$WORK/icons/512.png" --target linux
mkdir -p "$WORK/tar"
tar -C "$WORK/tar" -xJf "$WORK/src/Porthole.tar.xz"
rm "$WORK/src/Porthole.tar.xz"
tree=$WORK/tar/porthole
prefix=usr/local # or usr, on a machine without /usr/local
[[ -x "$tree/$prefix/bin/porthole" ]] || prefix=usr
# Add what fyne does not make: hicolor icons, the scalable one, AppStream.
for s in "${ICON_SIZES[@]}"; do
	install -Dm0644 "$WORK/icons/$s.png" "$tree/$prefix/share/icons/hicolor/${s}x$s/apps/$APPID.png"
done
install -Dm0644 "$ROOT/assets/porthole.svg" "$tree/$prefix/share/icons/hicolor/scalable/apps/$APPID.svg"
mkdir -p "$tree/$prefix/share/metainfo"
release_date=$(git -C "$ROOT" log -1 --format=%cs 2>/dev/null || date -u +%F)
sed -e "s/@VERSION@/$NUMVER/" -e "s/@DATE@/$release_date/" \
	"$ROOT/build/linux/$APPID.metainfo.xml" >"$tree/$prefix/share/metainfo/$APPID.metainfo.xml"
rm -rf "$tree/$prefix/share/pixmaps" # the hicolor icons replace it
install -m0644 "$ROOT/build/linux/tarball.mk" "$tree/Makefile"
XZ_OPT="-6 -T0" tar -C "$WORK/tar" --owner=0 --group=0 -cJf "$OUT/porthole-$VERSION-linux-amd64.tar.xz" porthole

step "porthole .deb"
stage=$WORK/deb/debian/porthole # shlib_depends wants .../debian/PACKAGE
install -Dm0755 "$tree/$prefix/bin/porthole" "$stage/usr/bin/porthole"
mkdir -p "$stage/usr/share"
cp -r "$tree/$prefix/share/applications" "$tree/$prefix/share/icons" "$tree/$prefix/share/metainfo" "$stage/usr/share/"
linked=$(shlib_depends "$stage" usr/bin/porthole)
loaded=$(dlopen_depends "$stage/usr/bin/porthole")
echo "linked (dpkg-shlibdeps): $linked"
echo "loaded by GLFW with dlopen: $loaded"
make_deb "$stage" porthole amd64 "$linked, $loaded" libdecor-0-0 \
	"local HTTP and SOCKS proxy in the tray, with a connection inspector" \
	"Porthole runs an HTTP and SOCKS proxy on one local port and sends every connection straight to the internet or through one WebSocket tunnel to a Porthole exit server (package porthole-exit). It lives in the system tray, shows every connection live, can point the desktop's system proxy at itself and puts it back on exit." \
	"$OUT" >/dev/null

step "windows/amd64: fyne package (cgo with mingw-w64)"
# An existing --executable makes fyne skip its first plain build and build
# only once, after it has generated the icon and version resource (.syso).
# The icon: fyne puts the one image it is given in the .ico, and 256 px is
# the largest an .ico holds.
: >"$WORK/src/porthole.exe"
CC=x86_64-w64-mingw32-gcc CXX=x86_64-w64-mingw32-g++ GOOS=windows GOARCH=amd64 \
	fyne_package "$WORK/icons/256.png" --target windows --executable "$WORK/src/porthole.exe"
win_exe=$OUT/porthole-$VERSION-windows-amd64.exe
mv "$WORK/src/Porthole.exe" "$win_exe"
"$SIGN" "$win_exe"

step "windows installer (NSIS)"
nsis_args=(-V2 -DVERSION="$VERSION" -DWINVER="$NUMVER.$BUILDNUM" -DEXE="$win_exe"
	-DICON="$WORK/icons/porthole.ico" -DOUTFILE="$OUT/porthole-$VERSION-windows-amd64-setup.exe")
if [[ -n "${PORTHOLE_SIGN_PKCS12:-}" ]]; then
	nsis_args+=(-DSIGN_CMD="$SIGN \"%1\"")
fi
makensis "${nsis_args[@]}" "$ROOT/build/windows/porthole.nsi"

step "porthole-exit: linux/amd64, linux/arm64, windows/amd64 (CGO_ENABLED=0)"
for target in linux/amd64 linux/arm64 windows/amd64; do
	goos=${target%/*} goarch=${target#*/} ext=
	[[ $goos == windows ]] && ext=.exe
	bin=$OUT/porthole-exit-$VERSION-$goos-$goarch$ext
	(cd "$WORK/src" && CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch "$GO" build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION" -o "$bin" ./cmd/porthole-exit)
	[[ $goos == windows ]] && "$SIGN" "$bin"
done

step "porthole-exit .debs"
for arch in amd64 arm64; do
	stage=$WORK/deb-exit-$arch
	install -Dm0755 "$OUT/porthole-exit-$VERSION-linux-$arch" "$stage/usr/bin/porthole-exit"
	install -Dm0644 "$ROOT/build/porthole-exit.service" "$stage/usr/lib/systemd/system/porthole-exit.service"
	make_deb "$stage" porthole-exit "$arch" "" "" \
		"Porthole's exit server (WebSocket tunnel endpoint)" \
		"porthole-exit accepts tunnel sessions from Porthole clients over WebSocket, behind a TLS reverse proxy or with its own certificate, and connects their streams to the internet. Includes a hardened systemd unit (not enabled: put the token in /etc/porthole-exit/token, then systemctl enable --now porthole-exit)." \
		"$OUT" >/dev/null
done

step "SHA256SUMS"
(cd "$OUT" && find . -maxdepth 1 -type f -printf '%P\n' | sort | xargs sha256sum) >"$WORK/SHA256SUMS"
mv "$WORK/SHA256SUMS" "$OUT/SHA256SUMS"

step "built in ${SECONDS}s; checking"
VERSION=$VERSION bash "$ROOT/build/dist-check.sh"
