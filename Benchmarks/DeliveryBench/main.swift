// DeliveryBench: measures the Delivery module's hot paths for bench/fetch.sh and bench/extract.sh.
//
//   DeliveryBench hashes SIZE_MIB REPEATS                       -> CRC-32/SHA-256: in-house vs zlib, libdeflate, libcrypto
//   DeliveryBench crc FILE [crc32|crc32c]                      -> CRC value and MiB/s
//   DeliveryBench fetch BASEURL FILEID SIZE CHECKSUM OUT        -> seconds for one verified HTTP retrieval
//   DeliveryBench extract ARCHIVE INTO                          -> seconds for SafeArchive.extract
//   DeliveryBench cache BASEURL FILEID SIZE CHECKSUM CACHEDIR OUTDIR -> miss and hit timings, bytes fetched
// Each prints one JSON object on stdout.
import Delivery
import Foundation

func fail(_ text: String) -> Never {
    FileHandle.standardError.write(Data((text + "\n").utf8))
    exit(2)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// CPU time (user + system) of the whole process so far.
func processCPUSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func emit(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

let args = CommandLine.arguments
guard args.count >= 2 else { fail("usage: DeliveryBench crc|fetch|extract|cache ...") }
let clock = ContinuousClock()

switch args[1] {
case "hashes":
    runHashBench(sizeMiB: args.count > 2 ? Int(args[2]) ?? 256 : 256, repeats: args.count > 3 ? Int(args[3]) ?? 5 : 5)

case "crc":
    guard args.count >= 3 else { fail("crc FILE [variant]") }
    let variant = ChecksumVariant(rawValue: args.count > 3 ? args[3] : "crc32") ?? .crc32
    _ = try Checksum.ofFile(args[2], variant: variant)  // warm the page cache
    let start = clock.now
    let checksum = try Checksum.ofFile(args[2], variant: variant)
    let elapsed = seconds(clock.now - start)
    let size = Double((try FileManager.default.attributesOfItem(atPath: args[2])[.size] as? Int) ?? 0)
    emit([
        "checksum": checksum.decimalString, "variant": variant.rawValue, "seconds": elapsed,
        "mibPerSecond": size / elapsed / 1_048_576,
    ])

case "fetch":
    guard args.count == 7 else { fail("fetch BASEURL FILEID SIZE CHECKSUM OUT") }
    let file = ExpectedFile(fileId: args[3], size: Int64(args[4]), checksum: args[5], checksumVariant: .crc32)
    let store = HTTPArchiveStore(baseURL: args[2])
    try? FileManager.default.removeItem(atPath: args[6])
    let start = clock.now
    let result = try await store.retrieve(file, to: args[6]) { _, _ in }
    let elapsed = seconds(clock.now - start)
    emit(["seconds": elapsed, "bytes": result.size, "mibPerSecond": Double(result.size) / elapsed / 1_048_576])

case "extract":
    guard args.count == 4 else { fail("extract ARCHIVE INTO") }
    let start = clock.now
    let cpuStart = processCPUSeconds()
    let summary = try SafeArchive.extract(args[2], into: args[3])
    let elapsed = seconds(clock.now - start)
    emit([
        "seconds": elapsed, "cpuSeconds": processCPUSeconds() - cpuStart, "entries": summary.entries,
        "bytes": summary.bytes,
    ])

case "cache":
    guard args.count == 8 else { fail("cache BASEURL FILEID SIZE CHECKSUM CACHEDIR OUTDIR") }
    let file = ExpectedFile(fileId: args[3], size: Int64(args[4]), checksum: args[5], checksumVariant: .crc32)
    let store = HTTPArchiveStore(baseURL: args[2])
    let cache = FileCache(root: args[6], maxBytes: 64 << 30)
    var start = clock.now
    let miss = try await cache.retrieve(file, from: store, to: args[7] + "/miss", progress: { _, _ in })
    let missSeconds = seconds(clock.now - start)
    start = clock.now
    let hit = try await cache.retrieve(file, from: store, to: args[7] + "/hit", progress: { _, _ in })
    let hitSeconds = seconds(clock.now - start)
    emit([
        "missSeconds": missSeconds, "missBytesFetched": miss.bytesTransferred, "hitSeconds": hitSeconds,
        "hitBytesFetched": hit.bytesTransferred, "hitFromCache": hit.fromCache,
    ])

default:
    fail("unknown command \(args[1])")
}
