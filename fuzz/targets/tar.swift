// libFuzzer target: the safe tar extractor (Delivery SafeArchive.extract: tar, gzip, any format libarchive
// reads) on crafted archives. Each input is written to <tmp>/dropbox-fuzz-tar-<pid>/in/archive and extracted
// into <tmp>/dropbox-fuzz-tar-<pid>/in/a/b/target, which is wiped after every run. After each run nothing new may
// exist outside the target (an escape by `..`, an absolute path or a link aborts the
// run), and every symbolic link extracted must resolve inside the target — see fuzz/README.md.
import Foundation
@testable import Delivery

private let root = NSTemporaryDirectory() + "dropbox-fuzz-tar-\(getpid())"
private let sandbox = root + "/in"
private let archive = sandbox + "/archive"
private let target = sandbox + "/a/b/target"
// Small bounds: every input (at most 64 KiB) decompresses at most 256 KiB (ratio 4, allowance 256 KiB), so a bomb
// costs milliseconds, not the up to 12.8 MB (200 × 64 KiB) of CRC-32 in an unoptimised, coverage-instrumented build
// that held the run at 40 inputs/s; the limit paths run far more often.
private let limits = ArchiveLimits(
    maxEntries: 2_000, maxTotalBytes: 256 << 10, maxEntryBytes: 128 << 10, maxExpansionRatio: 4,
    ratioAllowanceBytes: 256 << 10)

nonisolated(unsafe) private var prepared: Bool = {
    try? FileManager.default.removeItem(atPath: root)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "dropbox-fuzz-tar-\(getpid())") }
    return true
}()

private func everything(under path: String) -> [String] {
    (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []).map { path + "/" + $0 }
}

/// Names directly in `path` (not recursive).
private func names(in path: String) -> Set<String> {
    Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    precondition(prepared)
    do {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
    } catch { fatalError("cannot create \(target): \(error)") }
    guard FileManager.default.createFile(atPath: archive, contents: Data(bytes: data, count: size)) else {
        fatalError("cannot write \(archive)")
    }
    var symlinks = 0
    do {
        let summary = try SafeArchive.extract(archive, into: target, limits: limits, cancelled: nil)
        symlinks = summary.symlinks
    } catch {
        _ = error.message
    }
    // Nothing new on the way from the temporary directory down to the target: anything written outside the
    // target adds a name at one of these levels.
    let expected: [(String, Set<String>)] = [
        (root, ["in"]), (sandbox, ["archive", "a"]), (sandbox + "/a", ["b"]), (sandbox + "/a/b", ["target"]),
    ]
    for (directory, allowed) in expected where names(in: directory) != allowed {
        fatalError("extraction escaped the target: \(directory) holds \(names(in: directory).sorted())")
    }
    // Every link left in the target resolves beneath it.
    if symlinks > 0 {
        let realTarget = URL(fileURLWithPath: target).resolvingSymlinksInPath().path
        for path in everything(under: target) {
            guard (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil else { continue }
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            if resolved != realTarget && !resolved.hasPrefix(realTarget + "/") && resolved != path {
                fatalError("link \(path) resolves outside the target: \(resolved)")
            }
        }
    }
    // Wipe the target for the next run (an archive may carry read-only directories: make them writable first).
    if (try? FileManager.default.removeItem(atPath: target)) == nil {
        for path in everything(under: target) { chmod(path, 0o700) }
        do { try FileManager.default.removeItem(atPath: target) } catch {
            fatalError("cannot wipe \(target): \(error)")
        }
    }
    return 0
}
