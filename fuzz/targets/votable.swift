// libFuzzer target: the VOTable reader of the ALMA archive source (TAP and DataLink answers) — see
// fuzz/README.md.
import Foundation
@testable import RestoreSteps

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        let table = try VOTable.parse(Data(bytes: data, count: size), name: "fuzz VOTable")
        _ = table.rows.count + table.fields.count
    } catch {
        _ = error.message
    }
    return 0
}
