#!/usr/bin/env bash
# Builds the release agent and runs the pickup bench (agent vs. inotifywait+mv baseline) on tmpfs.
# Usage: bench/pickup.sh [pickup.py options, e.g. --burst-files 10000 --rate 200 --json out.json]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
command -v inotifywait >/dev/null || { echo "inotifywait is missing: apt-get install inotify-tools" >&2; exit 1; }
swift build -c release --product dropbox-agent
exec python3 "$repo/bench/pickup.py" --binary "$repo/.build/release/dropbox-agent" "$@"
