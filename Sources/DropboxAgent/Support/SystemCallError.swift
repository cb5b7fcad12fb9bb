import FoundationEssentials
import Glibc

/// A failed system call, with errno and the path it concerned.
struct SystemCallError: Error, CustomStringConvertible, Equatable {
    var call: String
    var path: String
    var errno: Int32
    var description: String { "\(call)(\(path)): \(String(cString: strerror(errno))) (errno \(errno))" }
}
