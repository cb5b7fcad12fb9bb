#!/bin/sh
# Runs one libFuzzer target on its seed corpus: fuzz/run.sh TARGET [RUNS] [libFuzzer options…]
#
#   fuzz/run.sh request               # 1 000 000 inputs (the figure recorded in fuzz/README.md)
#   fuzz/run.sh tar 50000 -max_total_time=600
#
# The seeds (fuzz/corpus/TARGET) are read, never written: new inputs go to .build/fuzz/corpus/TARGET, crashes
# to .build/fuzz/artifacts/TARGET/ (reproduce one with `.build/fuzz/bin/fuzz-TARGET FILE`). One process (no
# -jobs/-workers): the machine is shared. Build first with fuzz/build.sh.
set -eu
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh TARGET [RUNS] [libFuzzer options…]}
runs=${2:-1000000}
shift; [ $# -gt 0 ] && shift
bin=.build/fuzz/bin/fuzz-$target
[ -x "$bin" ] || { echo "fuzz/run.sh: $bin missing: run fuzz/build.sh $target" >&2; exit 2; }
work=.build/fuzz/corpus/$target
artifacts=.build/fuzz/artifacts/$target
mkdir -p "$work" "$artifacts"
case $target in
    tar) max_len=65536 ;;
    config|request) max_len=8192 ;;
    *) max_len=16384 ;;
esac
# The config, ppr and tar targets write each input to a file under $TMPDIR (tar: and extract it, with fsyncs):
# on tmpfs that is 13× faster than on the disk (tar: 666 vs 50 inputs/s).
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
# Swift's runtime keeps metadata caches for the life of the process: LeakSanitizer would report them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}"
exec "$bin" -runs="$runs" -max_len="$max_len" -rss_limit_mb=3072 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" "$work" "fuzz/corpus/$target"
