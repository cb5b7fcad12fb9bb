internal import FoundationEssentials
internal import Glibc

/// A one-line description of an error for status files and logs (what `localizedDescription` gave with full
/// Foundation, which FoundationEssentials lacks): the system's message for file-system errors, with the file.
public enum ErrorText {
    /// `No such file or directory (/data/x)` for a Foundation file error, `strerror` for a POSIX error, else the
    /// error's own description.
    public static func describe(_ error: any Error) -> String {
        if let cocoa = error as? CocoaError {
            var text: String
            if let posix = cocoa.underlying as? POSIXError {
                text = String(cString: strerror(posix.code.rawValue))
            } else if let underlying = cocoa.underlying {
                text = "\(underlying)"
            } else {
                text = "file error \(cocoa.code.rawValue)"
            }
            if let path = cocoa.filePath { text += " (\(path))" }
            return text
        }
        if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
        return "\(error)"
    }
}
