#!/bin/sh
# Throughput of a verified HTTP retrieval (HTTPArchiveStore: libcurl + CRC-32 while streaming + fsync + rename)
# against plain `curl -o`, both from the same nginx NGAS-shaped store, same target file system.
#
#   bench/fetch.sh [SIZE_MIB (default 1024)] [REPEATS (default 3)]
#
# Uses tmpfs (/dev/shm) for the store and the downloads when it has room, else bench/out/ on disk;
# BENCH_DIR=/some/dir forces a directory (e.g. on disk: the fetch then includes a real fsync).
# Prints per-run MiB/s, the medians, the ratios ours/curl (target >= 1.0x on tmpfs) and ours/(curl + fsync)
# (target >= 1.3x on ext4), and both sides' CPU time (perf stat task-clock: steadier than wall time when the
# machine is busy). Runs alternate which side goes first. Not a test.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024}
repeats=${2:-5}
cd "$here"

echo "building DeliveryBench (release)..."
swift build -c release --product DeliveryBench >/dev/null
bin=$(swift build -c release --show-bin-path)/DeliveryBench

need_kib=$((size_mib * 1024 * 3 + 102400))
if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"; work=$(mktemp -d "$BENCH_DIR/delivery-bench.XXXXXX")
elif [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')" -gt "$need_kib" ] 2>/dev/null; then
    work=$(mktemp -d /dev/shm/delivery-bench.XXXXXX)
else
    mkdir -p bench/out; work=$(mktemp -d "$here/bench/out/fetch.XXXXXX")
fi
chmod 755 "$work"
cleanup() { scripts/services/nginx-store.sh stop "$work/run" || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
mkdir -p "$work/store" "$work/dl"
id=uid___A002_Xbench_X1.asdm.sdm.tar.gz
echo "creating ${size_mib} MiB random file in $work ..."
head -c "$((size_mib * 1048576))" /dev/urandom > "$work/store/$id"
chmod 644 "$work/store/$id"
size=$(stat -c %s "$work/store/$id")
crc_json=$("$bin" crc "$work/store/$id" crc32)
crc=$(echo "$crc_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["checksum"])')
echo "zlib-polynomial CRC-32 (our Checksum, warm cache): $(echo "$crc_json" | python3 -c 'import json,sys; print("%.0f MiB/s" % json.load(sys.stdin)["mibPerSecond"])')"

port=$(scripts/services/nginx-store.sh start "$work/store" 0 "$work/run" | awk '/^PORT/ {print $2}')
url="http://127.0.0.1:$port"

cpu() { awk -F, '/task-clock/ {printf "%.3f", $1 / 1000}' "$1"; }
curl_rates=""; our_rates=""; synced_rates=""; curl_cpu=""; our_cpu=""
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
run_curl() {
    rm -f "$work/dl/curl.bin"
    t=$(perf stat -x, -e task-clock -o "$work/perf.curl" curl -s -o "$work/dl/curl.bin" -w '%{time_total}' "$url/RETRIEVE?file_id=$id")
    r=$(python3 -c "print('%.1f' % ($size / $t / 1048576))")
    curl_rates="$curl_rates $r"; curl_cpu="$curl_cpu $(cpu "$work/perf.curl")"
    rm -f "$work/dl/curl.bin"
    # The same with durability: curl -o followed by an fsync of the file (what HTTPArchiveStore does).
    # Timed like the plain run (curl's own time_total, no process start-up) plus the wall time of the fsync.
    tc=$(curl -s -o "$work/dl/curl.bin" -w '%{time_total}' "$url/RETRIEVE?file_id=$id")
    s0=$(date +%s.%N); sync "$work/dl/curl.bin"; s1=$(date +%s.%N)
    rs=$(python3 -c "print('%.1f' % ($size / ($tc + $s1 - $s0) / 1048576))")
    synced_rates="$synced_rates $rs"
    rm -f "$work/dl/curl.bin"
}
run_ours() {
    rm -f "$work/dl/ours.bin"
    ours=$(perf stat -x, -e task-clock -o "$work/perf.ours" "$bin" fetch "$url" "$id" "$size" "$crc" "$work/dl/ours.bin")
    o=$(echo "$ours" | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["mibPerSecond"])')
    our_rates="$our_rates $o"; our_cpu="$our_cpu $(cpu "$work/perf.ours")"
    rm -f "$work/dl/ours.bin"
}
i=1
while [ "$i" -le "$repeats" ]; do
    # Alternate which side goes first, so neither always meets the other's write-back.
    if [ $((i % 2)) -eq 1 ]; then run_curl; run_ours; else run_ours; run_curl; fi
    echo "run $i: curl -o ${r} MiB/s   curl -o + fsync ${rs} MiB/s   HTTPArchiveStore fetch+verify ${o} MiB/s   (load $(cut -d' ' -f1 /proc/loadavg))"
    i=$((i + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$curl_rates" "$our_rates" "$size_mib" "$work" "$synced_rates" "$curl_cpu" "$our_cpu" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]; o = [float(x) for x in sys.argv[2].split()]
cs = statistics.median([float(x) for x in sys.argv[5].split()])
cc = statistics.median([float(x) for x in sys.argv[6].split()]); oc = statistics.median([float(x) for x in sys.argv[7].split()])
mc, mo = statistics.median(c), statistics.median(o)
print("file %s MiB on %s, %d alternating runs" % (sys.argv[3], "tmpfs" if sys.argv[4].startswith("/dev/shm") else sys.argv[4], len(c)))
print("median curl -o:                     %.0f MiB/s" % mc)
print("median HTTPArchiveStore+CRC+fsync:  %.0f MiB/s" % mo)
print("median curl -o + fsync:             %.0f MiB/s" % cs)
print("ratio ours/curl:                    %.2fx (target >= 1.0x on tmpfs)" % (mo / mc))
print("ratio ours/(curl + fsync):          %.2fx (target >= 1.3x on ext4)" % (mo / cs))
print("CPU (task-clock, user+sys) median:  curl -o %.2f s, ours %.2f s, ratio curl/ours %.2fx" % (cc, oc, cc / oc))
PY
