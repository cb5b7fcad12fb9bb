#!/usr/bin/env bash
# Builds dropbox-agent_<version>_amd64.deb from a release build with the Swift runtime linked statically,
# then inspects it: dpkg-deb --info/--contents, lintian (when installed), and the extracted binary's
# --version and validate (no Swift .so needed at run time; examples and CASA programs where the binary
# looks for them).
#
#   scripts/build-deb.sh [--no-build] [--out DIR]
#
#   --no-build   reuse the existing release build (.build-deb/swiftpm/release/dropbox-agent)
#   --out DIR    where the .deb goes (default: .build-deb/)
#   DEB_VERSION  package version (default: the binary's --version)
#   DEB_MAINTAINER  Maintainer field "Name <address>" (default: git config user.name and user.email)
#   DEB_SCRATCH  SwiftPM scratch path of the release build (default: .build-deb/swiftpm)
#
# Needs: the Swift toolchain, dpkg-dev (dpkg-shlibdeps), binutils (strip, readelf), gzip; optional:
# lintian, systemd-analyze. See packaging/deb/README.md.
set -euo pipefail
umask 022

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$REPO/packaging/deb"
OUT="$REPO/.build-deb"
BUILD=1

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build-deb: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
    --no-build) BUILD=0 ;;
    --out) OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
    esac
    shift
done

for tool in dpkg-deb dpkg-shlibdeps strip readelf gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev binutils gzip)"
done
[ "$(dpkg --print-architecture)" = amd64 ] || die "this script builds amd64 packages only"
[ -f "$REPO/casa/restore_mous.py" ] || die "casa/restore_mous.py is missing: the CASA programs are part of the package"

# A scratch path of its own: another `swift build -c release` in this tree (or the generate-manual package
# plugin, which builds release without --static-swift-stdlib) cannot replace the binary being packaged.
export DEB_SCRATCH="${DEB_SCRATCH:-$REPO/.build-deb/swiftpm}"
SWIFT_FLAGS=(-c release --static-swift-stdlib --scratch-path "$DEB_SCRATCH")
cd "$REPO"
if [ $BUILD = 1 ]; then
    say "swift build ${SWIFT_FLAGS[*]} (a few minutes on 2 cores)"
    swift build "${SWIFT_FLAGS[@]}" >&2
fi
BIN="$(swift build "${SWIFT_FLAGS[@]}" --show-bin-path)/dropbox-agent"
[ -x "$BIN" ] || die "no release binary at $BIN (run without --no-build)"
if readelf -d "$BIN" | grep -E 'NEEDED.*(libswift|libFoundation|libdispatch|libBlocksRuntime)'; then
    die "$BIN needs Swift shared libraries: it was not built with --static-swift-stdlib"
fi

VERSION="${DEB_VERSION:-$("$BIN" --version)}"
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "not a Debian version: '$VERSION'"
MAINTAINER="${DEB_MAINTAINER:-$(git -C "$REPO" config user.name || true) <$(git -C "$REPO" config user.email || true)>}"
[[ "$MAINTAINER" =~ ^[^\<]*[^\ \<][^\<]*\ \<[^@\>]+@[^@\>]+\>$ ]] || die "no Maintainer: set DEB_MAINTAINER='Name <address>' (or git config user.name/user.email)"
DEB="$OUT/dropbox-agent_${VERSION}_amd64.deb"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/build-deb.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"

say "staging $ROOT"
install -d "$ROOT/usr/bin" "$ROOT/usr/share/dropbox-agent/casa" "$ROOT/usr/share/dropbox-agent/schemas" \
    "$ROOT/usr/share/dropbox-agent/examples" "$ROOT/usr/share/man/man1" "$ROOT/usr/share/doc/dropbox-agent" \
    "$ROOT/lib/systemd/system" "$ROOT/etc/dropbox-agent" "$ROOT/DEBIAN"
install -m 0755 "$BIN" "$ROOT/usr/bin/dropbox-agent"
# As dh_strip does: debug symbols and the .comment/.note sections go; Swift's metadata sections stay.
strip --remove-section=.comment --remove-section=.note "$ROOT/usr/bin/dropbox-agent"

# CASA programs: found by the binary at <prefix>/share/dropbox-agent/casa (next to bin/). Executable
# bits as in git (scripts with a #! line are run directly).
for f in "$REPO"/casa/*.py "$REPO"/casa/*.sh "$REPO/casa/requirements.txt"; do
    if [ -x "$f" ] && head -c2 "$f" | grep -q '#!'; then mode=0755; else mode=0644; fi
    install -m "$mode" "$f" "$ROOT/usr/share/dropbox-agent/casa/"
done
install -m 0644 "$REPO"/schemas/*.json "$ROOT/usr/share/dropbox-agent/schemas/"
cp -r "$REPO/examples/requests" "$ROOT/usr/share/dropbox-agent/examples/"
install -m 0644 "$PKG/dropbox-agent.service" "$ROOT/lib/systemd/system/dropbox-agent.service"
install -m 0644 "$PKG/agent.json" "$ROOT/etc/dropbox-agent/agent.json"

# Documentation: README.Debian, copyright, changelog (Debian policy 12.5, 12.7; a native package, so
# changelog.gz).
install -m 0644 "$PKG/README.md" "$ROOT/usr/share/doc/dropbox-agent/README.Debian"
install -m 0644 "$PKG/copyright" "$ROOT/usr/share/doc/dropbox-agent/copyright"
{
    printf 'dropbox-agent (%s) unstable; urgency=medium\n\n' "$VERSION"
    printf '  * Built from %s.\n\n' "$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'a source tree')"
    printf ' -- %s  %s\n' "$MAINTAINER" "$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n > "$ROOT/usr/share/doc/dropbox-agent/changelog.gz"
chmod 0644 "$ROOT/usr/share/doc/dropbox-agent/changelog.gz"

say "man page"
MAN_SRC="$WORK/dropbox-agent.1"
"$PKG/generate-manual.sh" "$BIN" "$MAN_SRC" >&2 || die "generate-manual failed"
gzip -9n < "$MAN_SRC" > "$ROOT/usr/share/man/man1/dropbox-agent.1.gz"
chmod 0644 "$ROOT/usr/share/man/man1/dropbox-agent.1.gz"

say "shell completions (swift-argument-parser)"
install -d "$ROOT/usr/share/bash-completion/completions" "$ROOT/usr/share/zsh/vendor-completions" \
    "$ROOT/usr/share/fish/vendor_completions.d"
# Sourced by bash-completion, not run: no #! line (lintian: bash-completion-with-hashbang).
"$BIN" --generate-completion-script bash | sed '1{/^#!/d}' > "$ROOT/usr/share/bash-completion/completions/dropbox-agent"
"$BIN" --generate-completion-script zsh > "$ROOT/usr/share/zsh/vendor-completions/_dropbox-agent"
"$BIN" --generate-completion-script fish > "$ROOT/usr/share/fish/vendor_completions.d/dropbox-agent.fish"
bash -n "$ROOT/usr/share/bash-completion/completions/dropbox-agent" || die "the bash completion script does not parse"

find "$ROOT" -type d -exec chmod 0755 {} +
find "$ROOT" -type f ! -perm -u+x -exec chmod 0644 {} +

say "Depends (dpkg-shlibdeps)"
SHLIBS=""
mkdir -p "$WORK/src/debian"
cp "$PKG/debian/control" "$WORK/src/debian/control"
if SHLIBS_LINE="$(cd "$WORK/src" && dpkg-shlibdeps -O -e "$ROOT/usr/bin/dropbox-agent" 2>"$WORK/shlibdeps.err")"; then
    SHLIBS="${SHLIBS_LINE#shlibs:Depends=}"
fi
if [ -z "$SHLIBS" ]; then
    cat "$WORK/shlibdeps.err" >&2 || true
    say "dpkg-shlibdeps failed; using the list measured on Debian 12 (swift-style.md §4)"
    SHLIBS="libarchive13 (>= 3.0.4), libc6 (>= 2.35), libcurl4 (>= 7.63.0), libgcc-s1 (>= 3.3.1), libsqlite3-0 (>= 3.7.14), libstdc++6 (>= 12), libxml2 (>= 2.9.1)"
fi
# python3 + python3-venv: `dropbox-agent casa install` creates the modular CASA venv; adduser: postinst.
DEPENDS="adduser, $SHLIBS, python3 (>= 3.10), python3-venv"

INSTALLED_SIZE="$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)"
sed -e "s|@VERSION@|$VERSION|" -e "s|@MAINTAINER@|$MAINTAINER|" -e "s|@DEPENDS@|$DEPENDS|" \
    -e "s|@INSTALLED_SIZE@|$INSTALLED_SIZE|" "$PKG/DEBIAN/control.in" > "$ROOT/DEBIAN/control"
install -m 0644 "$PKG/DEBIAN/conffiles" "$ROOT/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$PKG/DEBIAN/$s" "$ROOT/DEBIAN/$s"; done
# md5sums of everything but the conffiles (dpkg keeps their hashes itself), as dh_md5sums does.
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/md5sums"

mkdir -p "$OUT"
say "dpkg-deb --build $DEB"
dpkg-deb --build --root-owner-group -Zxz "$ROOT" "$DEB" >&2

# ---- inspection -----------------------------------------------------------------------------------
say "dpkg-deb --info"
dpkg-deb --info "$DEB"
say "dpkg-deb --contents"
dpkg-deb --contents "$DEB"

if command -v lintian >/dev/null; then
    say "lintian"
    # Errors fail the build; warnings are shown.
    lintian --fail-on error "$DEB" || die "lintian reported errors"
else
    say "lintian is not installed (apt-get install lintian); skipped"
fi

say "extracted package: the binary runs without the toolchain"
X="$WORK/extracted"
dpkg-deb -x "$DEB" "$X"
XBIN="$X/usr/bin/dropbox-agent"
# A clean environment: no LD_LIBRARY_PATH, no toolchain on PATH.
run_x() { env -i PATH=/usr/bin:/bin HOME="$WORK" "$XBIN" "$@"; }
if ldd "$XBIN" | grep -E 'not found|libswift|libFoundation|/opt/swift|/usr/share/swift'; then
    die "the packaged binary resolves libraries from the toolchain or misses some (ldd above)"
fi
got="$(run_x --version)"
[ "$got" = "$VERSION" ] || [ -n "${DEB_VERSION:-}" ] || die "--version printed '$got', expected '$VERSION'"
echo "dropbox-agent --version: $got"
EX="$X/usr/share/dropbox-agent/examples/requests"
for f in "$EX"/*.json; do
    run_x validate "$f" || die "validate rejected the packaged example $f"
done
for f in "$EX"/invalid/*.json; do
    if run_x validate "$f" >/dev/null 2>&1; then die "validate accepted the packaged invalid example $f"; fi
done
echo "validate: $(ls "$EX"/*.json | wc -l) valid and $(ls "$EX"/invalid/*.json | wc -l) invalid examples judged correctly"
# The shipped configuration decodes with this binary (status loads it, then lists an empty spool).
mkdir -p "$WORK/spool"
[ "$(run_x status --config "$X/etc/dropbox-agent/agent.json" --spool "$WORK/spool" --json | tr -d '[:space:]')" = "[]" ] \
    || die "the packaged /etc/dropbox-agent/agent.json is not accepted by the binary"
echo "agent.json: accepted"
# locateCASAProgramDirectory looks at <dir of binary>/../share/dropbox-agent/casa/restore_mous.py.
[ -f "$(dirname "$XBIN")/../share/dropbox-agent/casa/restore_mous.py" ] || die "CASA programs are not where the binary looks"
[ -f "$X/usr/share/dropbox-agent/casa/requirements.txt" ] || die "casa/requirements.txt is not packaged"
echo "CASA programs: $(ls "$X/usr/share/dropbox-agent/casa" | tr '\n' ' ')"

if command -v man >/dev/null; then
    warnings="$(MANWIDTH=100 man --warnings -l "$X/usr/share/man/man1/dropbox-agent.1.gz" 2>&1 >/dev/null)"
    [ -z "$warnings" ] || { echo "$warnings" >&2; die "the man page renders with warnings"; }
    echo "man page: renders without warnings"
fi

if command -v systemd-analyze >/dev/null; then
    say "systemd-analyze verify (against the extracted tree)"
    # verify checks that ExecStart exists: point it at the extracted binary in a copy of the unit.
    sed "s|/usr/bin/dropbox-agent|$XBIN|" "$X/lib/systemd/system/dropbox-agent.service" > "$WORK/dropbox-agent.service"
    # Documentation=man:dropbox-agent(1) is checked too: MANPATH finds the packaged page.
    out="$(MANPATH="$X/usr/share/man" systemd-analyze verify "$WORK/dropbox-agent.service" 2>&1)" || { echo "$out" >&2; die "systemd-analyze verify failed"; }
    [ -z "$out" ] || { echo "$out" >&2; die "systemd-analyze verify printed warnings"; }
    echo "systemd-analyze verify: clean"
    systemd-analyze security --offline=yes "$WORK/dropbox-agent.service" 2>/dev/null | tail -1 || true
fi

say "built $DEB"
echo "size: $(stat -c %s "$DEB") bytes ($(du -h "$DEB" | cut -f1)); installed: ${INSTALLED_SIZE} KiB"
echo "Depends: $DEPENDS"
echo "test it: DROPBOX_DEB=$DEB python3 -m pytest -q tests/test_deb.py"
