#!/bin/bash
# Every issue-15 figure of the README's table, one bench after another (run it on a quiet machine: nothing else
# compiling or running CASA), output in OUT_DIR (default bench/out/issue15-<time>), one file per bench.
#
#   bench/issue15.sh [OUT_DIR]
#
# Order: hash, fetch tmpfs/ext4, extraction tmpfs/ext4, pickup ext4, pickup tmpfs with and without the dashboard,
# restore overhead (real CASA: the CASA venv and fixture of scripts/lib.sh), then the clean build (bench/build.sh).
# ext4 runs use BENCH_DIR (default /tmp/dropbox-bench-ext4; it must be on a real disk).
set -u
cd "$(dirname "$0")/.."
out=${1:-bench/out/issue15-$(date -u +%Y%m%dT%H%M%S)}
disk=${BENCH_DIR:-/tmp/dropbox-bench-ext4}
mkdir -p "$out" "$disk"
log() { echo "=== $* ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"; }
run() { local name=$1; shift; echo "$name"; { log "$*"; "$@"; log end; } >"$out/$name.txt" 2>&1; }
swift build -c release --product dropbox-agent >/dev/null
agent=.build/release/dropbox-agent
run hash bench/hash.sh 256 7
run fetch-tmpfs env -u BENCH_DIR bench/fetch.sh 1024 5
run fetch-ext4 env BENCH_DIR="$disk" bench/fetch.sh 1024 5
run extract-tmpfs env -u BENCH_DIR bench/extract.sh 240 5
run extract-ext4 env BENCH_DIR="$disk" bench/extract.sh 240 5
run pickup-ext4 python3 bench/pickup.py --binary "$agent" --dir "$disk" --rounds 3 --burst-files 2000
run pickup-tmpfs python3 bench/pickup.py --binary "$agent" --dir /dev/shm --rounds 3 --burst-files 10000
run pickup-tmpfs-nodash python3 bench/pickup.py --binary "$agent" --dir /dev/shm --rounds 1 --burst-files 10000 \
    --no-dashboard
run overhead bench/overhead.sh --rounds 3
run build bench/build.sh
echo "results in $out"
