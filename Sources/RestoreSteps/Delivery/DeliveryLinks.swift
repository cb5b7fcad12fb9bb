internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Where a delivery is found and how to download all of it with one command. Pure: no file system.
public struct DeliveryLinks: Sendable, Equatable {
    /// The delivery's URL, ending in `/` (`<baseURL>/<name>/`), or a `file://` URL without a base URL.
    public let url: String
    /// One line that downloads every file (nil without a base URL: there is nothing to download over HTTP).
    public let downloadCommand: String?
    /// The URL list file the `wget` command reads, when the delivery is a directory tree.
    public static let urlListName = "urls.txt"

    /// - Parameters:
    ///   - baseURL: `delivery.baseURL` (nil: `file://` URLs of `path`).
    ///   - name: the delivery's directory name in the download area.
    ///   - path: the delivery's path on this host (only used without a base URL).
    ///   - singleFile: the one archive of a `tar`/`tgz` delivery; nil for a directory tree.
    ///   - folder: the local directory the command downloads into.
    public init(baseURL: String?, name: String, path: String, singleFile: String?, folder: String) {
        guard let baseURL, !baseURL.isEmpty else {
            url = URL(fileURLWithPath: path, isDirectory: true).absoluteString
            downloadCommand = nil
            return
        }
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        url = base + "/" + Self.escaped(name) + "/"
        if let singleFile {
            downloadCommand = "curl -fLO " + Self.quoted(url + Self.escaped(singleFile))
        } else {
            // wget re-creates the tree below the delivery's directory: cut the URL's path components up to it.
            let depth = (URL(string: base)?.path ?? "").split(separator: "/").count + 1
            downloadCommand =
                "wget -x -nH --cut-dirs=\(depth) -P \(Self.quoted(folder)) -i " + Self.quoted(url + Self.urlListName)
        }
    }

    /// The URL of a file of the delivery (`relative` is its path inside it).
    public func url(of relative: String) -> String {
        url
            + relative.split(separator: "/", omittingEmptySubsequences: false).map { Self.escaped(String($0)) }.joined(
                separator: "/")
    }

    /// The `urls.txt` content: one URL per line.
    public func urlList(_ relativePaths: [String]) -> String {
        relativePaths.map { url(of: $0) }.joined(separator: "\n") + "\n"
    }

    static func escaped(_ component: String) -> String {
        TextEssentials.percentEncoded(component) {
            TextEssentials.isURLPathAllowed($0) && !Array("/;?#%".utf8).contains($0)
        }
    }

    /// Single-quoted for a POSIX shell when it holds anything but safe characters.
    static func quoted(_ word: String) -> String {
        let safe = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,".unicodeScalars)
        if !word.isEmpty, word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingAll("'", with: "'\\''") + "'"
    }
}

/// Random, unguessable names for deliveries.
public enum DeliveryName {
    /// 128 random bits as 32 lowercase hex digits (`SystemRandomNumberGenerator`: the kernel's `getrandom`).
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let value = generator.next() as UInt64
            let hex = String(value, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Whether `name` looks like a name made by ``random()``.
    public static func isValid(_ name: String) -> Bool {
        name.utf8.count == 32 && name.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
