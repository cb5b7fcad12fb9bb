#!/bin/sh
# CRC-32 and SHA-256: the in-house code Delivery used to carry against zlib's crc32_z, libdeflate's crc32 and
# libcrypto's EVP SHA-256, on one in-memory buffer, alternating runs (wall and thread-CPU time, ratio vs in-house).
#
#   bench/hash.sh [SIZE_MIB (default 256)] [REPEATS (default 7)]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
echo "building DeliveryBench (release)..."
swift build -c release --product DeliveryBench >/dev/null
bin=$(swift build -c release --show-bin-path)/DeliveryBench
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
"$bin" hashes "${1:-256}" "${2:-7}"
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
