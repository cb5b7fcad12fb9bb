#!/bin/sh
# Clean release build of the agent, and what each dependency costs to compile (issue 15: "clean release build
# <= 5 min on this machine; measure what each dependency costs to compile").
#
#   bench/build.sh [REV (default HEAD)]
#
# In a fresh clone of REV in a temporary directory (nothing from this tree's .build is reused; the packages come
# from the configured mirror, so resolution is part of the time):
#   1. the whole clean build, `swift build -c release --product dropbox-agent`, as a user runs it: wall and CPU
#      time, ratio against the 300 s target;
#   2. in a second fresh clone, the same build one target at a time in dependency order (each dependency's
#      modules alone, then ours), so each line is what that target adds; the sum exceeds the parallel build's
#      wall time (no overlap between targets).
# Not a test. Run it on a quiet machine; it prints the load before and after.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
rev=${1:-HEAD}
work=$(mktemp -d "${TMPDIR:-/tmp}/dropbox-build-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs); rev $(git -C "$here" rev-parse --short "$rev")"

clock() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a + b }'; }
cpu() { awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat; }  # children's utime+stime, clock ticks

git clone -q "$here" "$work/whole" && git -C "$work/whole" checkout -q "$rev"
t0=$(clock); c0=$(cpu)
(cd "$work/whole" && swift build -c release --product dropbox-agent >"$work/whole.log" 2>&1) || {
    tail -20 "$work/whole.log"; exit 1; }
t1=$(clock); c1=$(cpu)
hz=$(getconf CLK_TCK)
awk -v w="$(sub "$t1" "$t0")" -v c="$(( (c1 - c0) ))" -v hz="$hz" 'BEGIN {
    printf "clean release build (dropbox-agent): wall %.1f s, CPU %.1f s; target 300 s: %.2f of it (%s)\n",
        w, c / hz, w / 300, (w <= 300 ? "meets" : "misses") }'

git clone -q "$here" "$work/steps" && git -C "$work/steps" checkout -q "$rev"
cd "$work/steps"
t0=$(clock)
swift package resolve >/dev/null 2>&1
t1=$(clock)
printf '%-28s %7.1f s\n' "package resolution" "$(sub "$t1" "$t0")"
total=0
# Dependencies first (the products the agent uses), then our targets bottom-up.
for target in ArgumentParser Logging SystemPackage Subprocess UnixSignals \
    InotifyWatcher SQLiteDatabase Delivery RestoreSteps DropboxAgent; do
    t0=$(clock)
    swift build -c release --target "$target" >"$work/$target.log" 2>&1 || { tail -20 "$work/$target.log"; exit 1; }
    t1=$(clock)
    s=$(sub "$t1" "$t0")
    total=$(add "$total" "$s")
    printf '%-28s %7.1f s\n' "$target" "$s"
done
t0=$(clock)
swift build -c release --product dropbox-agent >"$work/link.log" 2>&1 || { tail -20 "$work/link.log"; exit 1; }
t1=$(clock)
s=$(sub "$t1" "$t0")
total=$(add "$total" "$s")
printf '%-28s %7.1f s\n' "link (static Swift runtime)" "$s"
printf '%-28s %7.1f s (one target at a time)\n' "sum" "$total"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
