// `DeliveryBench hashes SIZE_MIB REPEATS`: CRC-32 and SHA-256 throughput of the old in-house code (Baselines.swift)
// against zlib's crc32_z, libdeflate's crc32 and libcrypto's EVP SHA-256, on the same in-memory buffer, fed in
// 256 KiB pieces (a libcurl write callback's order of size). Runs alternate (the order rotates every repeat) so
// all candidates see the same background load; each run is timed by the wall clock and by the thread's CPU clock
// (CLOCK_THREAD_CPUTIME_ID, which a busy machine disturbs much less).
import CCrypto
import CDeflate
import CZlib
import Foundation

struct HashCandidate: Sendable {
    let name: String
    let family: String
    let run: @Sendable (UnsafeRawBufferPointer) -> UInt64
}

func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func pieces(_ buffer: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
    let piece = 256 << 10
    var offset = 0
    while offset < buffer.count {
        let n = min(piece, buffer.count - offset)
        body(UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + n)]))
        offset += n
    }
}

let hashCandidates: [HashCandidate] = [
    HashCandidate(name: "crc32 in-house slicing-by-16", family: "crc32") { buffer in
        var crc: UInt32 = 0xFFFF_FFFF
        pieces(buffer) { crc = BaselineCRCTable.zlib.update(crc, $0.baseAddress!, $0.count) }
        return UInt64(~crc)
    },
    HashCandidate(name: "crc32 zlib crc32_z", family: "crc32") { buffer in
        var crc: UInt = 0
        pieces(buffer) { crc = crc32_z(crc, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count) }
        return UInt64(crc)
    },
    HashCandidate(name: "crc32 libdeflate_crc32", family: "crc32") { buffer in
        var crc: UInt32 = 0
        pieces(buffer) { crc = libdeflate_crc32(crc, $0.baseAddress!, $0.count) }
        return UInt64(crc)
    },
    HashCandidate(name: "sha256 in-house", family: "sha256") { buffer in
        var hash = BaselineSHA256()
        pieces(buffer) { hash.update($0) }
        return UInt64(hash.hexDigest().prefix(16), radix: 16)!
    },
    HashCandidate(name: "sha256 libcrypto EVP", family: "sha256") { buffer in
        let context = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(context) }
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        pieces(buffer) { _ = EVP_DigestUpdate(context, $0.baseAddress!, $0.count) }
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    },
]

func runHashBench(sizeMiB: Int, repeats: Int) {
    let count = sizeMiB << 20
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
    defer { buffer.deallocate() }
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for i in stride(from: 0, to: count, by: 8) {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        buffer.storeBytes(of: state, toByteOffset: i, as: UInt64.self)
    }
    let input = UnsafeRawBufferPointer(buffer)
    var wall: [String: [Double]] = [:]
    var cpu: [String: [Double]] = [:]
    var results: [String: UInt64] = [:]
    for round in 0..<repeats {
        for k in 0..<hashCandidates.count {
            let candidate = hashCandidates[(k + round) % hashCandidates.count]
            let start = ContinuousClock.now
            let c0 = threadCPUSeconds()
            let value = candidate.run(input)
            let c1 = threadCPUSeconds()
            wall[candidate.name, default: []].append(seconds(ContinuousClock.now - start))
            cpu[candidate.name, default: []].append(c1 - c0)
            if let earlier = results[candidate.name], earlier != value {
                fail("\(candidate.name) is not deterministic")
            }
            results[candidate.name] = value
        }
    }
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    print("buffer \(sizeMiB) MiB in memory, \(repeats) alternating runs; MiB/s by median wall / median thread CPU time")
    for family in ["crc32", "sha256"] {
        let members = hashCandidates.filter { $0.family == family }
        let baseline = members[0].name
        let distinct = Set(members.map { results[$0.name]! })
        for member in members {
            let w = median(wall[member.name]!)
            let c = median(cpu[member.name]!)
            let line = String(
                format: "%@ %7.0f MiB/s wall %7.0f MiB/s cpu   ratio vs in-house: %.2fx wall %.2fx cpu",
                member.name.padding(toLength: 30, withPad: " ", startingAt: 0) as NSString, Double(sizeMiB) / w,
                Double(sizeMiB) / c,
                median(wall[baseline]!) / w, median(cpu[baseline]!) / c)
            print(line)
        }
        print("\(family): all candidates agree: \(distinct.count == 1)")
    }
}
