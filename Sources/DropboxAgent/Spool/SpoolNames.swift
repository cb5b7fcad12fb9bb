import Delivery
import FoundationEssentials
import Glibc
import InotifyWatcher

/// What a name in the spool directory is, by the contract's naming rules.
enum SpoolEntryKind: Equatable, Sendable {
    /// `NAME.json`: a request.
    case request(name: String)
    /// `NAME.cancel`: a cancellation.
    case cancel(name: String)
    /// `NAME.json.ok`: the commit marker — the dropper says `NAME.json` is complete, no settle time needed.
    case commitMarker(name: String)
    /// Looks like a request (`*.json`) but the NAME breaks the rules; kept aside with a reason.
    case badRequestName(reason: String)
    /// Temporary names of transfer tools and editors, dot-files, our own status files: never touched.
    case ignored
    /// Anything else (a README, a stray file): left alone.
    case unrelated
}

/// The contract's spool naming rules in one place.
enum SpoolNames {
    /// `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`, not ending in `.status`.
    static func isValidName(_ name: String) -> Bool {
        guard !name.hasSuffix(".status"), (1...128).contains(name.utf8.count) else { return false }
        var first = true
        for b in name.utf8 {
            let alnum = (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
            if first {
                guard alnum else { return false }
                first = false
            } else {
                guard alnum || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") else {
                    return false
                }
            }
        }
        return true
    }

    /// Ignored: the transfer tools' and editors' temporary names as the watcher library defines them
    /// (``NameFilter/isTemporaryName(_:)``: dot-files, `*~`, `sedXXXXXX`, and `*.tmp`, `*.part`, `*.filepart`,
    /// `*.crdownload`, `*.swp` in any case, as Windows tools write them), plus our own status files.
    static func isIgnored(_ entry: String) -> Bool {
        NameFilter.isTemporaryName(entry) || entry.hasSuffix(".status.json")
    }

    /// Classifies one directory entry.
    static func classify(_ entry: String) -> SpoolEntryKind {
        if isIgnored(entry) { return .ignored }
        if entry.hasSuffix(".json") {
            let name = String(entry.dropLast(5))
            if !FileName.isValidUTF8(name) {
                return .badRequestName(
                    reason:
                        "the request file name \"\(printable(entry))\" is not valid UTF-8 (request names are [A-Za-z0-9][A-Za-z0-9._-]{0,127})"
                )
            }
            if isValidName(name) { return .request(name: name) }
            return .badRequestName(
                reason:
                    "the request name \"\(printable(name))\" does not match [A-Za-z0-9][A-Za-z0-9._-]{0,127} (and must not end in .status)"
            )
        }
        if entry.hasSuffix(".json.ok") {
            let name = String(entry.dropLast(8))
            if isValidName(name) { return .commitMarker(name: name) }
        }
        if entry.hasSuffix(".cancel") {
            let name = String(entry.dropLast(7))
            if isValidName(name) { return .cancel(name: name) }
        }
        return .unrelated
    }

    /// The commit marker of a request.
    static func commitMarker(for name: String) -> String { "\(name).json.ok" }

    /// The status file name of a request.
    static func statusFile(for name: String) -> String { "\(name).status.json" }

    /// A name safe to show in messages and to use in file names (controls and odd bytes escaped).
    static func printable(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars.prefix(160) {
            if scalar.value >= 0x10_FF00 && scalar.value <= 0x10_FFFF {
                // A byte of a name that is not UTF-8.
                out += "\\x" + TextEssentials.hex(UInt8(scalar.value - 0x10_FF00))
            } else if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "/" {
                out += "\\x" + TextEssentials.hex(UInt8(scalar.value))
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A file-name-safe rendering of any entry name, for quarantine.
    static func quarantineName(_ s: String) -> String {
        let safe = s.unicodeScalars.map { c -> String in
            let ok =
                (c.value >= 0x30 && c.value <= 0x39) || (c.value >= 0x41 && c.value <= 0x5A)
                || (c.value >= 0x61 && c.value <= 0x7A) || c == "." || c == "_" || c == "-"
            return ok ? String(c) : "_"
        }.joined()
        let trimmed = String(safe.prefix(100))
        return trimmed.hasPrefix(".") ? "_" + trimmed : (trimmed.isEmpty ? "unnamed" : trimmed)
    }
}
