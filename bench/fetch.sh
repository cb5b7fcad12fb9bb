#!/bin/sh
# Throughput of a verified HTTP retrieval (HTTPArchiveStore: libcurl + CRC-32 while streaming + fsync + rename)
# against plain `curl -o`, both from the same nginx NGAS-shaped store, same target file system.
#
#   bench/fetch.sh [SIZE_MIB (default 1024)] [REPEATS (default 3)]
#
# Uses tmpfs (/dev/shm) for the store and the downloads when it has room, else bench/out/ on disk;
# BENCH_DIR=/some/dir forces a directory (e.g. on disk: the fetch then includes a real fsync).
# Prints per-run MiB/s, the medians and the ratio ours/curl (target >= 0.95). Not a test.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024}
repeats=${2:-3}
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

curl_rates=""; our_rates=""; synced_rates=""
i=1
while [ "$i" -le "$repeats" ]; do
    rm -f "$work/dl/curl.bin" "$work/dl/ours.bin"
    t=$(curl -s -o "$work/dl/curl.bin" -w '%{time_total}' "$url/RETRIEVE?file_id=$id")
    r=$(python3 -c "print('%.1f' % ($size / $t / 1048576))")
    curl_rates="$curl_rates $r"
    rm -f "$work/dl/curl.bin"
    # The same with durability: curl -o followed by an fsync of the file (what HTTPArchiveStore does).
    s0=$(date +%s.%N); curl -s -o "$work/dl/curl.bin" "$url/RETRIEVE?file_id=$id"; sync "$work/dl/curl.bin"; s1=$(date +%s.%N)
    rs=$(python3 -c "print('%.1f' % ($size / ($s1 - $s0) / 1048576))")
    synced_rates="$synced_rates $rs"
    rm -f "$work/dl/curl.bin"
    ours=$("$bin" fetch "$url" "$id" "$size" "$crc" "$work/dl/ours.bin")
    o=$(echo "$ours" | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["mibPerSecond"])')
    our_rates="$our_rates $o"
    echo "run $i: curl -o ${r} MiB/s   curl -o + fsync ${rs} MiB/s   HTTPArchiveStore fetch+verify ${o} MiB/s"
    i=$((i + 1))
done
python3 - "$curl_rates" "$our_rates" "$size_mib" "$work" "$synced_rates" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]; o = [float(x) for x in sys.argv[2].split()]
cs = statistics.median([float(x) for x in sys.argv[5].split()])
mc, mo = statistics.median(c), statistics.median(o)
print("file %s MiB on %s" % (sys.argv[3], "tmpfs" if sys.argv[4].startswith("/dev/shm") else sys.argv[4]))
print("median curl -o:                     %.0f MiB/s" % mc)
print("median HTTPArchiveStore+CRC+fsync:  %.0f MiB/s" % mo)
print("median curl -o + fsync:             %.0f MiB/s" % cs)
print("ratio ours/curl:                    %.2fx (target >= 0.95x)" % (mo / mc))
print("ratio ours/(curl + fsync):          %.2fx" % (mo / cs))
PY
