# shellcheck shell=bash
# Sourced by build/dist.sh and build/dist-check.sh: derives every version a
# package format needs from the one string `git describe` gives, which is
# what --version prints. Needs ROOT; reads VERSION when make passes it.
#
#   VERSION   git describe --tags --always --dirty  (v1.2.0-3-gabc1234-dirty, or
#             a7c4d8d without tags; "dev" outside a git checkout)
#   NUMVER    x.y.z for fyne and Windows: the tag's, or FyneApp.toml's Version
#             while there is no tag
#   BUILDNUM  commits up to HEAD (fyne's app build, the 4th Windows field)
#   DEBVER    Debian version: 1.2.0, 1.2.0+git3.gabc1234.dirty after a tag,
#             1.2.0~rc1 before one, 0.1.0~git.a7c4d8d without tags (~ sorts
#             before the release it leads to)

dist_versions() {
	if [[ -z "${VERSION:-}" ]]; then
		VERSION=$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)
	fi
	local base rest
	base=$(sed -n 's/^[[:space:]]*Version[[:space:]]*=[[:space:]]*"\([0-9.]*\)".*/\1/p' "$ROOT/FyneApp.toml" | head -n1)
	base=${base:-0.0.0}
	if [[ "$VERSION" =~ ^v?([0-9]+)\.([0-9]+)\.([0-9]+)(.*)$ ]]; then
		NUMVER="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
		rest=${BASH_REMATCH[4]}
		if [[ -z "$rest" ]]; then
			DEBVER=$NUMVER
		elif [[ "$rest" =~ ^-[0-9]+-g ]]; then # commits after the tag
			DEBVER="$NUMVER+git${rest#-}"
		else # v1.2.0-rc1: a pre-release
			DEBVER="$NUMVER~${rest#-}"
		fi
	else
		NUMVER=$base
		DEBVER="$base~git.$VERSION"
	fi
	DEBVER=$(printf '%s' "$DEBVER" | tr -c 'A-Za-z0-9.+~' '.')
	# Kept when given: dist-check must see the build dist.sh stamped.
	BUILDNUM=${BUILDNUM:-$(git -C "$ROOT" rev-list --count HEAD 2>/dev/null || echo 1)}
	export VERSION NUMVER BUILDNUM DEBVER
}
