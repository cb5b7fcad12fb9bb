#!/usr/bin/env bash
# The Swift formatter with the checked-in configuration (.swift-format: lines ≤ 120 columns, 4-space indents).
#   scripts/format.sh           rewrite every Swift file of the package in place
#   scripts/format.sh --check   change nothing; list what does not conform and exit 1 if anything does
# Uses the toolchain's own `swift format` (Swift 6 and later ship it); no other dependency.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
swift format --version >/dev/null 2>&1 || { echo "format.sh: this Swift toolchain has no 'swift format'" >&2; exit 2; }
# Every tracked Swift file (new files too), never build products.
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- 'Package.swift' '*.swift' | grep -v '^\.build')
[ ${#files[@]} -gt 0 ] || { echo "format.sh: no Swift files" >&2; exit 2; }
case "${1:-}" in
    --check)
        # `lint --strict` turns every finding into an error: formatting and the enabled rules alike.
        swift format lint --strict --parallel --configuration .swift-format "${files[@]}"
        ;;
    "")
        swift format format --in-place --parallel --configuration .swift-format "${files[@]}"
        ;;
    *)
        echo "usage: scripts/format.sh [--check]" >&2
        exit 2
        ;;
esac
