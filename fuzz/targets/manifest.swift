// libFuzzer target: the pipeline manifest reader (PipelineManifest.parse) — see fuzz/README.md.
import Foundation
@testable import RestoreSteps

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let xml = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let manifest = try PipelineManifest.parse(xml, name: "fuzz manifest")
        _ = manifest.sessions.count
    } catch {
        _ = error.message
    }
    return 0
}
