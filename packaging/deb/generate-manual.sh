#!/usr/bin/env bash
# Writes the man page of a built dropbox-agent binary: swift-argument-parser's generate-manual tool
# (the program behind its `generate-manual` package plugin) turns the binary's --experimental-dump-help
# into mdoc; ENVIRONMENT, FILES, EXAMPLES and SEE ALSO come from the two fragments next to this script.
#
#   packaging/deb/generate-manual.sh BINARY OUTPUT.1
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 BINARY OUTPUT.1" >&2; exit 2; }
BIN="$1"
OUTPUT="$2"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

# Same flags and scratch path as scripts/build-deb.sh's release build, so the already-built ArgumentParser is reused (seconds, not minutes).
FLAGS=(-c release --static-swift-stdlib --scratch-path "${DEB_SCRATCH:-$REPO/.build-deb/swiftpm}")
(cd "$REPO" && swift build "${FLAGS[@]}" --product generate-manual >&2)
TOOL="$(cd "$REPO" && swift build "${FLAGS[@]}" --show-bin-path)/generate-manual"

DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
DATE="$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}" +%F)"
"$TOOL" "$BIN" --date "$DATE" --output-directory "$DIR"
GENERATED="$DIR/$(basename "$BIN").1"
[ -s "$GENERATED" ] || { echo "generate-manual wrote no $GENERATED" >&2; exit 1; }
grep -q '^\.Sh "EXIT STATUS"' "$GENERATED" || { echo "unexpected generate-manual output (no EXIT STATUS)" >&2; exit 1; }

# mdoc section order: ... ENVIRONMENT, FILES, EXIT STATUS, EXAMPLES, SEE ALSO.
VERSION="$("$BIN" --version)"
# The configuration reference comes from the README's table (one source for both).
python3 "$HERE/config-reference.py" "$REPO/README.md" > "$DIR/config.mdoc"
awk -v files="$HERE/dropbox-agent.1.files" -v config="$DIR/config.mdoc" -v version="$VERSION" '
    /^\.Os *$/ { print ".Os dropbox-agent " version; next }
    /^\.Sh "EXIT STATUS"/ { while ((getline line < config) > 0) print line; while ((getline line < files) > 0) print line }
    { print }
' "$GENERATED" > "$OUTPUT"
cat "$HERE/dropbox-agent.1.tail" >> "$OUTPUT"
