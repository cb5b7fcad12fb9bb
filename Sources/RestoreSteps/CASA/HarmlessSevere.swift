/// SEVERE log messages known to be harmless, in one place.
///
/// A SEVERE line is ignored when its message contains one of ``patterns``. Continuation lines (origin ending in
/// `+`) share the verdict of the line they continue.
public enum HarmlessSevere {
    /// Substrings of harmless SEVERE messages.
    ///
    /// - The leap-second table warning casacore logs on every run once the clock is past the table's last date
    ///   (`MeasTable::dUTC` / `MeasIERS`): "Leap second table TAI_UTC seems out-of-date." and its two continuation
    ///   lines (casa-offline.md).
    public static let patterns: [String] = [
        "Leap second table TAI_UTC seems out-of-date",
        "Until the table is updated (see the CASA documentation or your system admin)",
        "times and coordinates derived from UTC could be wrong by 1s or more",
    ]

    /// Whether `message` (the message field of a SEVERE line) is a known-harmless one.
    public static func isHarmless(_ message: some StringProtocol) -> Bool {
        patterns.contains { message.contains($0) }
    }
}
