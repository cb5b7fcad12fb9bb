#!/bin/sh
# Extraction speed of SafeArchive.extract (libarchive, with all safety checks and the gzip CRC verified) against
# `bsdtar -xf` (the same libarchive, no CRC check, no confinement checks), on an auxproducts-style .tgz (many small
# text-like files + a few large incompressible ones), plus the FileCache hit path (a second retrieval of the same
# file: 0 bytes fetched). Runs alternate which side goes first; both sides' CPU time (perf stat task-clock) is
# printed too, steadier than wall time on a busy machine. Needs bsdtar (Debian: libarchive-tools).
# Both sides are timed the same way: a whole process (start-up included: the Swift runtime's for ours), from the
# same clock around the same `perf stat` wrapper, after the same `rm -rf` + `mkdir` + `sync` of the output
# directory, with the archive in the page cache for both. Ours also reports the extraction alone (in-process
# clock and CPU time, without the process start-up), which is what the agent pays per archive.
#
#   bench/extract.sh [LARGE_MIB (default 240)] [REPEATS (default 5)]
#
# Works in tmpfs (/dev/shm) when it has room, else bench/out/; BENCH_DIR=/some/dir forces a directory. Not a test.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
large_mib=${1:-240}
repeats=${2:-5}
cd "$here"

echo "building DeliveryBench (release)..."
swift build -c release --product DeliveryBench >/dev/null
bin=$(swift build -c release --show-bin-path)/DeliveryBench

if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"; work=$(mktemp -d "$BENCH_DIR/delivery-bench.XXXXXX")
elif [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')" -gt "$((large_mib * 1024 * 6 + 512000))" ] 2>/dev/null; then
    work=$(mktemp -d /dev/shm/delivery-xbench.XXXXXX)
else
    mkdir -p bench/out; work=$(mktemp -d "$here/bench/out/extract.XXXXXX")
fi
chmod 755 "$work"
cleanup() { scripts/services/nginx-store.sh stop "$work/run" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

echo "creating an auxproducts-like tree in $work ..."
python3 - "$work/src" "$large_mib" <<'PY'
import os, random, sys
root, large_mib = sys.argv[1], int(sys.argv[2])
top = os.path.join(root, "uid___A001_X1_X2.hifa_calimage.auxproducts")
random.seed(42)
words = [("w%05d" % i) for i in range(20000)]
for d in range(40):
    sub = os.path.join(top, "pipeline-procedure", "stage%02d" % d)
    os.makedirs(sub, exist_ok=True)
    for f in range(100):
        n = random.randint(200, 20000)
        with open(os.path.join(sub, "file%03d.txt" % f), "w") as fh:
            fh.write(" ".join(random.choice(words) for _ in range(n // 7)))
big = os.path.join(top, "caltables")
os.makedirs(big, exist_ok=True)
per = large_mib // 4
for i in range(4):
    with open(os.path.join(big, "uid___A002_X1_X%d.ms.bcal.tbl" % i), "wb") as fh:
        for _ in range(per):
            fh.write(os.urandom(1 << 20))
PY
tar -C "$work/src" -czf "$work/aux.tgz" uid___A001_X1_X2.hifa_calimage.auxproducts
rm -rf "$work/src"
asize=$(stat -c %s "$work/aux.tgz")
entries=$(tar tzf "$work/aux.tgz" | wc -l)
echo "archive: $((asize / 1048576)) MiB, $entries entries"

cpu() { awk -F, '/task-clock/ {printf "%.3f", $1 / 1000}' "$1"; }
tar_times=""; our_times=""; tar_cpu=""; our_cpu=""; inproc_times=""; inproc_cpu=""
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
run_tar() {
    rm -rf "$work/x"; mkdir -p "$work/x"; sync
    s=$(date +%s.%N); perf stat -x, -e task-clock -o "$work/perf.tar" bsdtar -x -f "$work/aux.tgz" -C "$work/x"; e=$(date +%s.%N)
    t=$(python3 -c "print('%.3f' % ($e - $s))")
    tar_times="$tar_times $t"; tar_cpu="$tar_cpu $(cpu "$work/perf.tar")"
}
run_ours() {
    rm -rf "$work/x"; mkdir -p "$work/x"; sync
    s=$(date +%s.%N); perf stat -x, -e task-clock -o "$work/perf.ours" "$bin" extract "$work/aux.tgz" "$work/x" > "$work/ours.json"; e=$(date +%s.%N)
    o=$(python3 -c "print('%.3f' % ($e - $s))")
    our_times="$our_times $o"; our_cpu="$our_cpu $(cpu "$work/perf.ours")"
    inproc_times="$inproc_times $(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["seconds"])' "$work/ours.json")"
    inproc_cpu="$inproc_cpu $(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["cpuSeconds"])' "$work/ours.json")"
}
i=1
while [ "$i" -le "$repeats" ]; do
    if [ $((i % 2)) -eq 1 ]; then run_tar; run_ours; else run_ours; run_tar; fi
    echo "run $i: bsdtar -xf ${t} s   SafeArchive.extract ${o} s   (load $(cut -d' ' -f1 /proc/loadavg))"
    i=$((i + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$work/x"

# Cache hit path through an nginx store.
mkdir -p "$work/store" "$work/cache" "$work/dl"
id=uid___A001_X1_X2.hifa_calimage.auxproducts.tgz
cp "$work/aux.tgz" "$work/store/$id"; chmod 644 "$work/store/$id"
crc=$("$bin" crc "$work/store/$id" crc32 | python3 -c 'import json,sys; print(json.load(sys.stdin)["checksum"])')
port=$(scripts/services/nginx-store.sh start "$work/store" 0 "$work/run" | awk '/^PORT/ {print $2}')
cache_json=$("$bin" cache "http://127.0.0.1:$port" "$id" "$asize" "$crc" "$work/cache" "$work/dl")

python3 - "$tar_times" "$our_times" "$asize" "$cache_json" "$work" "$tar_cpu" "$our_cpu" "$inproc_times" "$inproc_cpu" <<'PY'
import json, statistics, sys
t = [float(x) for x in sys.argv[1].split()]; o = [float(x) for x in sys.argv[2].split()]
tc = statistics.median([float(x) for x in sys.argv[6].split()]); oc = statistics.median([float(x) for x in sys.argv[7].split()])
size = int(sys.argv[3]) / 1048576; cache = json.loads(sys.argv[4])
mt, mo = statistics.median(t), statistics.median(o)
print("on %s; archive %.0f MiB" % ("tmpfs" if sys.argv[5].startswith("/dev/shm") else sys.argv[5], size))
print("both sides timed as whole processes (start-up included), same clock, same perf stat wrapper")
print("median bsdtar -xf:           %.2f s (%.0f MiB/s of archive)" % (mt, size / mt))
print("median SafeArchive.extract: %.2f s (%.0f MiB/s of archive)" % (mo, size / mo))
print("speed ratio ours/bsdtar:    %.2fx (target >= 1.0x)" % (mt / mo))
print("CPU (task-clock) median:    bsdtar %.2f s, ours %.2f s, ratio bsdtar/ours %.2fx" % (tc, oc, tc / oc))
it = statistics.median([float(x) for x in sys.argv[8].split()]); ic = statistics.median([float(x) for x in sys.argv[9].split()])
print("ours without process start-up (in-process clock): %.2f s wall, %.2f s CPU (ratios vs bsdtar's whole process %.2fx wall, %.2fx CPU)" % (it, ic, mt / it, tc / ic))
print("cache miss: %.3f s, %d bytes fetched; cache hit: %.4f s, %d bytes fetched (fromCache=%s)" % (
    cache["missSeconds"], cache["missBytesFetched"], cache["hitSeconds"], cache["hitBytesFetched"], cache["hitFromCache"]))
PY
