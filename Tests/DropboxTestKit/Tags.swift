// Swift Testing ships with the toolchain but not with its static SDK: `swift build --static-swift-stdlib` (the
// Debian package) builds this target without it, so everything that needs it is conditional.
#if canImport(Testing)
public import Testing
import Foundation

extension Tag {
    /// Pure logic on values or a scratch directory: no processes, services or kernel facilities beyond plain
    /// files; milliseconds each. `swift test --filter` on these suites is the fast loop while developing.
    @Tag public static var unit: Self
    /// Real parts of the system, one at a time: inotify, SQLite, libcurl against nginx or the fault-injecting
    /// store, aiosmtpd, the fake monolithic CASA, process groups; seconds each.
    @Tag public static var integration: Self
    /// The whole agent in-process (spool, intake, claims, leases, steps, status files); seconds to a minute.
    @Tag public static var endToEnd: Self
}

/// Which levels a run includes: `DROPBOX_TEST_TAGS`, a comma-separated list of tag names (`unit`,
/// `integration`, `endToEnd`); unset or empty, every level. `swift test` has no tag filter of its own, so the
/// slower suites carry ``Testing/Trait/selected(_:)`` next to their tag and are skipped (and reported so) when
/// their level is not listed: `DROPBOX_TEST_TAGS=unit swift test` runs the fast ones alone.
public enum TestSelection {
    /// The levels named in `DROPBOX_TEST_TAGS`; nil when every level runs.
    public static let levels: Set<String>? = {
        let text = ProcessInfo.processInfo.environment["DROPBOX_TEST_TAGS"] ?? ""
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return names.isEmpty ? nil : Set(names)
    }()

    /// Whether suites tagged `tag` run.
    public static func includes(_ tag: Tag) -> Bool {
        guard let levels else { return true }
        return [Tag.unit: "unit", .integration: "integration", .endToEnd: "endToEnd"][tag].map(levels.contains) ?? true
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the suite only when its level `tag` is selected (``TestSelection``).
    public static func selected(_ tag: Tag) -> Self {
        .enabled(if: TestSelection.includes(tag), "DROPBOX_TEST_TAGS does not include this level")
    }
}
#endif
