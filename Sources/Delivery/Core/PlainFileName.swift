/// The rule for a name that can only ever denote one file inside one directory.
///
/// Used for archive file ids, for names read from a server's directory index and for names taken from a URL's
/// last path component: a valid name cannot climb out of, or reach below, the directory it is joined to.
public enum PlainFileName {
    /// Whether `name` is a plain file name: not empty, not `.` or `..`, no `..` anywhere, no `/` or `\`, no NUL
    /// or other control character (nor DEL), at most 255 bytes of UTF-8.
    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.count <= 255
            && !name.contains("/") && !name.contains("\\") && !name.contains("..")
            && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// Whether `name` is a plain file name (``isValid(_:)``) that is also neither hidden nor an option: it does
    /// not start with `.` or `-`. The rule for names that a server or a manifest hands us and that we pass on
    /// to other programs as arguments.
    public static func isOrdinary(_ name: String) -> Bool {
        isValid(name) && !name.hasPrefix(".") && !name.hasPrefix("-")
    }
}
