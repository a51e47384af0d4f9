#!/usr/bin/env bash
# Checks the artifacts build/dist.sh put in dist/ (make dist runs it; make
# dist-check runs it alone). Nothing is installed on this machine: the .debs
# are unpacked with dpkg -x into a temporary root and run from there.
# PORTHOLE_SIGN_CAFILE (set by dist.sh for its throwaway certificate) is the
# CA the Windows signatures are verified against.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APPID=app.porthole.Porthole
# shellcheck source=build/dist-version.sh
source "$ROOT/build/dist-version.sh"
dist_versions
D=$ROOT/dist
T=$(mktemp -d "${TMPDIR:-/tmp}/porthole-dist-check.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() {
	echo "dist-check: FAIL: $*" >&2
	exit 1
}
ok() { echo "ok    $*"; }
skip() { echo "skip  $*"; }
need() { [[ -f "$1" ]] || fail "missing $(basename "$1")"; }
# expect OUTPUT PATTERN WHAT: OUTPUT must match the extended regexp PATTERN.
expect() { grep -Eq -- "$2" <<<"$1" || fail "$3: got: $1"; }

tar=$D/porthole-$VERSION-linux-amd64.tar.xz
deb=$D/porthole_${DEBVER}_amd64.deb
exitdebs=("$D/porthole-exit_${DEBVER}_amd64.deb" "$D/porthole-exit_${DEBVER}_arm64.deb")
winexe=$D/porthole-$VERSION-windows-amd64.exe
setup=$D/porthole-$VERSION-windows-amd64-setup.exe
exits=("$D/porthole-exit-$VERSION-linux-amd64" "$D/porthole-exit-$VERSION-linux-arm64" "$D/porthole-exit-$VERSION-windows-amd64.exe")
for f in "$tar" "$deb" "${exitdebs[@]}" "$winexe" "$setup" "${exits[@]}" "$D/SHA256SUMS"; do need "$f"; done

echo "== artifacts ($VERSION)"
(cd "$D" && for f in *; do
	printf '%10s  %9s  %s\n' "$(stat -c %s "$f")" "$(numfmt --to=iec --suffix=B "$(stat -c %s "$f")")" "$f"
done)
listed=$(wc -l <"$D/SHA256SUMS")
present=$(find "$D" -maxdepth 1 -type f ! -name SHA256SUMS | wc -l)
((listed == present)) || fail "SHA256SUMS lists $listed files, dist/ has $present"
(cd "$D" && sha256sum --check --quiet SHA256SUMS) || fail "SHA256SUMS does not match"
ok "SHA256SUMS covers all $listed artifacts and matches"

echo "== Linux: .debs unpacked with dpkg -x into a temporary root"
r=$T/root
dpkg -x "$deb" "$r"
dpkg -x "${exitdebs[0]}" "$r"
dpkg-deb --contents "$deb" | awk '{print "      " $NF}' | grep -v '/$'
got=$("$r/usr/bin/porthole" --version)
[[ "$got" == "porthole $VERSION" ]] || fail "porthole --version from the .deb: $got"
ok "usr/bin/porthole --version: $got"
got=$("$r/usr/bin/porthole-exit" --version)
[[ "$got" == "porthole-exit $VERSION" ]] || fail "porthole-exit --version from the .deb: $got"
ok "usr/bin/porthole-exit --version: $got"
for f in "$deb" "${exitdebs[@]}"; do
	[[ "$(dpkg-deb -f "$f" Version)" == "$DEBVER" ]] || fail "$(basename "$f"): version is not $DEBVER"
done
depends=$(dpkg-deb -f "$deb" Depends)
expect "$depends" '(^|, )libc6 ' "porthole's Depends names no libc6"
for lib in libgl1 libegl1 libx11-6 libxrandr2 libwayland-client0 libxkbcommon0; do
	expect "$depends" "(^|, )$lib( |,|\$)" "porthole's Depends names no $lib"
done
[[ -z "$(dpkg-deb -f "${exitdebs[0]}" Depends)" ]] || fail "porthole-exit is static and should depend on nothing"
ok "porthole Depends: $depends"
# Every dependency is a package that is installed here, at the version
# asked for: the Debian that built the .deb can install it.
IFS=',' read -ra deps <<<"$depends"
for dep in "${deps[@]}"; do
	alt_ok=0
	IFS='|' read -ra alts <<<"$dep"
	for alt in "${alts[@]}"; do
		read -r name op ver <<<"$(sed -E 's/[()]//g' <<<"$alt")"
		have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null) || continue
		if [[ -z "${op:-}" ]] || dpkg --compare-versions "$have" "$op" "$ver"; then alt_ok=1; fi
	done
	((alt_ok)) || fail "dependency not satisfiable here: $dep"
done
ok "every dependency is installed here at the version asked for"
desktop-file-validate "$r/usr/share/applications/$APPID.desktop" || fail "desktop-file-validate"
ok "desktop-file-validate $APPID.desktop"
appstreamcli validate --no-net "$r/usr/share/metainfo/$APPID.metainfo.xml" || fail "appstreamcli validate"
ok "appstreamcli validate --no-net $APPID.metainfo.xml"
for s in 16 24 32 48 64 128 256 512; do
	expect "$(file -b "$r/usr/share/icons/hicolor/${s}x$s/apps/$APPID.png")" "PNG image data, $s x $s" "${s}px icon"
done
[[ -f "$r/usr/share/icons/hicolor/scalable/apps/$APPID.svg" ]] || fail "no scalable icon"
ok "hicolor icons 16-512 px and scalable"

echo "== Linux: the tar.xz (fyne package), installed with its Makefile into a temporary root"
mkdir "$T/tar"
tar -C "$T/tar" -xJf "$tar"
make -s -C "$T/tar/porthole" copy-files DESTDIR="$T/tarroot" PREFIX=/usr/local
cmp "$T/tarroot/usr/local/bin/porthole" "$r/usr/bin/porthole" || fail "the tar.xz and the .deb carry different binaries"
for f in applications/$APPID.desktop metainfo/$APPID.metainfo.xml icons/hicolor/256x256/apps/$APPID.png; do
	cmp "$T/tarroot/usr/local/share/$f" "$r/usr/share/$f" || fail "tar.xz and .deb differ in $f"
done
desktop-file-validate "$T/tarroot/usr/local/share/applications/$APPID.desktop" || fail "desktop-file-validate (tar.xz)"
ok "make install of the tar.xz gives the .deb's binary, desktop file, metainfo and icons"

echo "== porthole-exit"
expect "$(file -b "${exits[0]}")" 'ELF 64-bit LSB executable, x86-64.*statically linked' "linux-amd64 exit"
expect "$(file -b "${exits[1]}")" 'ELF 64-bit LSB executable, ARM aarch64.*statically linked' "linux-arm64 exit"
expect "$(file -b "${exits[2]}")" 'PE32\+ executable \(console\) x86-64' "windows exit"
got=$("${exits[0]}" --version)
[[ "$got" == "porthole-exit $VERSION" ]] || fail "porthole-exit --version: $got"
ok "static linux-amd64, linux-arm64, windows-amd64 console; --version: $got"
dpkg-deb --contents "${exitdebs[1]}" | grep -q ' ./usr/lib/systemd/system/porthole-exit.service$' || fail "arm64 .deb has no unit"
expect "$(dpkg-deb -f "${exitdebs[1]}" Architecture)" '^arm64$' "arm64 .deb architecture"
unit=$r/usr/lib/systemd/system/porthole-exit.service
cmp "$unit" "$ROOT/build/porthole-exit.service" || fail "the .deb's unit differs from build/porthole-exit.service"
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify wants ExecStart's binary and the units it orders against:
	# give it the unpacked root, with this system's units added.
	for dir in /lib/systemd/system /usr/lib/systemd/system; do
		[[ -d $dir ]] && cp -an "$dir/." "$r/usr/lib/systemd/system/"
	done
	out=$(systemd-analyze verify --root="$r" /usr/lib/systemd/system/porthole-exit.service 2>&1) ||
		fail "systemd-analyze verify: $out"
	[[ -z "$out" ]] || fail "systemd-analyze verify warns: $out"
	ok "systemd-analyze verify porthole-exit.service (no warnings)"
	if out=$(systemd-analyze security --offline=yes --root="$r" porthole-exit.service 2>&1); then
		ok "systemd-analyze security: $(tail -n1 <<<"$out" | sed 's/^→ //')"
	fi
else
	skip "systemd-analyze verify: systemd-analyze is not installed"
fi

echo "== Windows (cross-built; not run here)"
expect "$(file -b "$winexe")" '^PE32\+ executable \(GUI\) x86-64' "porthole.exe"
headers=$(x86_64-w64-mingw32-objdump -p "$winexe")
expect "$headers" 'Subsystem[[:space:]]+00000002[[:space:]]+\(Windows GUI\)' "porthole.exe subsystem"
x86_64-w64-mingw32-objdump -h "$winexe" | grep -q ' \.rsrc ' || fail "porthole.exe has no .rsrc section"
resources=$(wrestool -l "$winexe")
expect "$resources" '--type=14 ' "porthole.exe has no icon group resource"
expect "$resources" '--type=16 ' "porthole.exe has no version resource"
expect "$resources" '--type=24 ' "porthole.exe has no manifest"
winver=$(wrestool -x --raw --type=16 "$winexe" | tr -d '\0' | grep -ao 'ProductVersion.[0-9.]*' | head -n1 | sed 's/^ProductVersion//')
expect "$winver" "$NUMVER\.$BUILDNUM" "porthole.exe version resource"
mkdir "$T/ico"
wrestool -x --type=14 -o "$T/ico" "$winexe"
icon=$(icotool -l "$T"/ico/*.ico | grep -o 'width=[0-9]*' | cut -d= -f2 | sort -un | paste -sd/)
[[ -n "$icon" ]] || fail "porthole.exe: the icon resource holds no image"
ok "porthole.exe: PE32+, GUI subsystem, .rsrc with the icon (${icon} px), version $winver, manifest"
expect "$(file -b "$setup")" 'PE32 executable \(GUI\).*Nullsoft Installer' "installer"
ok "installer: $(file -b "$setup")"
for f in "$winexe" "$setup" "${exits[2]}"; do
	if [[ -n "${PORTHOLE_SIGN_CAFILE:-}" ]]; then
		out=$(osslsigncode verify -CAfile "$PORTHOLE_SIGN_CAFILE" -in "$f" 2>&1) || fail "osslsigncode verify $(basename "$f"): $out"
		ok "osslsigncode verify $(basename "$f"): signature ok ($(grep -m1 'Subject:' <<<"$out" | sed 's/^[[:space:]]*//'))"
	elif out=$(osslsigncode verify -in "$f" 2>&1); then # a chain to the system's CAs
		ok "osslsigncode verify $(basename "$f"): signature ok"
	elif grep -Eq 'Number of (verified )?signatures: [1-9]' <<<"$out"; then
		skip "$(basename "$f") is signed, but not by a CA this system trusts (PORTHOLE_SIGN_CAFILE names one)"
	else
		skip "$(basename "$f") is not signed (no PORTHOLE_SIGN_PKCS12 / PORTHOLE_SIGN_SELF=1)"
	fi
done
echo "dist-check: all checks passed"
