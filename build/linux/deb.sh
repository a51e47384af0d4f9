# shellcheck shell=bash
# Sourced by build/dist.sh: builds a binary .deb from a staged root with
# dpkg-deb alone (no debian/ source tree: the binaries are built by dist).

# make_deb STAGE PACKAGE ARCH DEPENDS RECOMMENDS SUMMARY DESCRIPTION OUTDIR
# STAGE holds the files as installed (usr/...). Prints the .deb's path.
make_deb() {
	local stage=$1 pkg=$2 arch=$3 depends=$4 recommends=$5 summary=$6 description=$7 outdir=$8
	local size deb
	mkdir -p "$stage/DEBIAN"
	size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
	{
		echo "Package: $pkg"
		echo "Version: $DEBVER"
		echo "Architecture: $arch"
		echo "Maintainer: The Porthole developers <porthole@localhost>"
		echo "Installed-Size: $size"
		if [[ -n "$depends" ]]; then echo "Depends: $depends"; fi
		if [[ -n "$recommends" ]]; then echo "Recommends: $recommends"; fi
		echo "Section: net"
		echo "Priority: optional"
		echo "Homepage: https://github.com/porthole"
		echo "Description: $summary"
		printf '%s\n' "$description" | fold -s -w 72 | sed -e 's/ *$//' -e 's/^/ /'
	} >"$stage/DEBIAN/control"
	(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
		sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
	find "$stage" -type d -exec chmod 0755 {} +
	deb="$outdir/${pkg}_${DEBVER}_${arch}.deb"
	dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
	echo "$deb"
}

# shlib_depends STAGE FILE: the Depends for the shared libraries STAGE/FILE
# links, as dpkg-shlibdeps derives them from the installed packages'
# symbols files (so versions are the minimum the binary really needs).
# dpkg-shlibdeps wants a source tree, so STAGE must be TOP/debian/PACKAGE;
# it writes a minimal TOP/debian/control and runs in TOP.
shlib_depends() {
	local stage=$1 file=$2 top pkg line
	pkg=$(basename "$stage")
	top=$(dirname "$stage")
	[[ "$(basename "$top")" == debian ]] || {
		echo "dist: shlib_depends: $stage is not .../debian/PACKAGE" >&2
		return 1
	}
	top=$(dirname "$top")
	mkdir -p "$stage/DEBIAN" # how dpkg-shlibdeps recognises the package root
	printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$pkg" "$pkg" >"$top/debian/control"
	line=$(cd "$top" && dpkg-shlibdeps -O "debian/$pkg/$file")
	rm "$top/debian/control"
	[[ "$line" == shlibs:Depends=* ]] || {
		echo "dist: dpkg-shlibdeps gave no Depends for $file" >&2
		return 1
	}
	echo "${line#shlibs:Depends=}"
}

# GLFW (Fyne's window and GL driver) loads its X11 and Wayland libraries
# with dlopen, so neither the ELF header nor dpkg-shlibdeps sees them; only
# libGL, libwayland-client and libc are linked. These are the sonames
# glfw/src/x11_init.c and wl_init.c load and cannot run without (X11:
# libX11 and the extensions it uses; Wayland: cursor, EGL, xkbcommon; EGL
# itself). Left out: Vulkan, OSMesa, GLES and libX11-xcb (Vulkan surfaces
# only), and libdecor (a Recommends: GLFW draws its own frame without it).
GLFW_DLOPEN=(
	libX11.so.6 libXcursor.so.1 libXrandr.so.2 libXinerama.so.1 libXi.so.6
	libXxf86vm.so.1 libXext.so.6 libXrender.so.1
	libwayland-cursor.so.0 libwayland-egl.so.1 libxkbcommon.so.0 libEGL.so.1
)

# dlopen_depends BINARY: the packages holding GLFW_DLOPEN's libraries on
# this machine, comma-separated. Each soname must appear in BINARY (so the
# list cannot outlive a GLFW that stopped loading it) and be installed here
# (the build's -dev packages pull them in).
dlopen_depends() {
	local bin=$1 so path pkgs=() names
	names=$(strings -a "$bin" | grep -E '^lib[A-Za-z0-9_+.-]*\.so(\.[0-9]+)*$' | sort -u)
	for so in "${GLFW_DLOPEN[@]}"; do
		grep -qxF "$so" <<<"$names" || {
			echo "dist: $bin no longer loads $so; update GLFW_DLOPEN in build/linux/deb.sh" >&2
			return 1
		}
		path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ { print $NF; exit }')
		[[ -n "$path" ]] || {
			echo "dist: $so is not installed here; cannot name its package" >&2
			return 1
		}
		pkgs+=("$(dpkg -S "$(readlink -f "$path")" | head -n1 | cut -d: -f1)")
	done
	printf '%s\n' "${pkgs[@]}" | sort -u | paste -sd, | sed 's/,/, /g'
}
