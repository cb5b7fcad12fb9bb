// libFuzzer target: the PPR readers — PPRSummary.read (a restore PPR) and CalibrationPPR.read (a package's
// calibration pprequest.xml, read from a file in a per-process temporary directory) — see fuzz/README.md.
import Foundation
@testable import RestoreSteps

nonisolated(unsafe) private var pprPath: String = {
    let dir = NSTemporaryDirectory() + "dropbox-fuzz-ppr-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "dropbox-fuzz-ppr-\(getpid())") }
    return dir + "/pprequest.xml"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buffer = UnsafeBufferPointer(start: data, count: size)
    let xml = String(decoding: buffer, as: UTF8.self)
    do {
        let summary = try PPRSummary.read(xml, name: "fuzz PPR")
        _ = summary.asdms.count
    } catch {
        _ = error.message
    }
    guard FileManager.default.createFile(atPath: pprPath, contents: Data(buffer)) else {
        fatalError("cannot write \(pprPath)")
    }
    do {
        let ppr = try CalibrationPPR.read(file: pprPath)
        _ = ppr.asdms.count + ppr.sessionCount
    } catch {
        _ = error.message
    }
    return 0
}
