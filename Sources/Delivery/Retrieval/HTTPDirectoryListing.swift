internal import CLibXML2
public import FoundationEssentials
internal import Glibc

/// The files an HTTP server lists in a directory index: nginx or Apache `autoindex` HTML, or nginx
/// `autoindex_format json`.
///
/// Only direct children of the listed directory are taken: the parent link (`../`), sort and other query links
/// (`?C=N;O=D`), fragments, and links to other hosts or other directories are ignored. Names are
/// percent-decoded (HTML) and must then be plain file names (``PlainFileName/isValid(_:)``); links that decode
/// to anything else (`%2F`, `..`, control characters) are not entries but are kept in ``rejectedNames`` so a
/// caller can log them.
public struct HTTPDirectoryListing: Sendable, Hashable {
    /// One listed name.
    public struct Entry: Sendable, Hashable {
        /// The decoded name, a plain file name.
        public var name: String
        /// Whether the server lists it as a directory (a link ending in `/`, or JSON `"type": "directory"`).
        public var isDirectory: Bool
        /// The size in bytes when the listing states it exactly (nginx JSON); nil for HTML.
        public var size: Int64?

        /// Creates an entry.
        public init(name: String, isDirectory: Bool, size: Int64? = nil) {
            self.name = name
            self.isDirectory = isDirectory
            self.size = size
        }
    }

    /// The entries, in the server's order, each name once.
    public var entries: [Entry]
    /// Links or names that pointed into the directory but are not plain file names once decoded.
    public var rejectedNames: [String]

    /// The names of the entries that are not directories.
    public var fileNames: [String] { entries.filter { !$0.isDirectory }.map(\.name) }

    /// Creates a listing.
    public init(entries: [Entry], rejectedNames: [String] = []) {
        self.entries = entries
        self.rejectedNames = rejectedNames
    }

    /// Reads a directory index fetched as `document`: JSON when its `Content-Type` says so (or the body starts
    /// with `[`), HTML otherwise, resolving links against ``HTTPDocument/finalURL``.
    ///
    /// - Throws: ``DeliveryError`` `listingUnreadable`.
    public static func parse(_ document: HTTPDocument) throws(DeliveryError) -> HTTPDirectoryListing {
        let type = document.contentType?.lowercased() ?? ""
        let firstByte = document.body.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        if type.contains("json") || (!type.contains("html") && firstByte == UInt8(ascii: "[")) {
            return try parse(json: document.body)
        }
        return try parse(html: document.body, baseURL: document.finalURL)
    }

    /// Reads an HTML directory index (nginx/Apache `autoindex`) with libxml2's HTML parser.
    ///
    /// The corresponding C function is `htmlReadMemory` (options `HTML_PARSE_RECOVER | HTML_PARSE_NONET`,
    /// errors and warnings silenced).
    /// - Parameters:
    ///   - html: the page.
    ///   - baseURL: the URL of the listed directory (a missing trailing `/` is assumed).
    /// - Returns: the direct children.
    /// - Throws: ``DeliveryError`` `listingUnreadable` when `baseURL` is not an absolute URL or the page cannot be
    ///   parsed at all.
    public static func parse(html: Data, baseURL: String) throws(DeliveryError) -> HTTPDirectoryListing {
        guard let base = URLComponents(string: baseURL), let scheme = base.scheme, base.host != nil else {
            throw DeliveryError(.listingUnreadable, "directory listing base URL is not absolute: '\(baseURL)'")
        }
        var basePath = base.percentEncodedPath
        if !basePath.hasSuffix("/") { basePath += "/" }
        let hrefs = try links(in: html, name: baseURL)
        var builder = Builder()
        for href in hrefs {
            guard !href.isEmpty, !href.hasPrefix("#"), !href.hasPrefix("?"), !href.contains("?") else { continue }
            var path = href
            if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
            if href.hasPrefix("//") || hasScheme(href) {
                // Absolute: same origin only.
                let resolved = href.hasPrefix("//") ? "\(scheme):\(path)" : path
                guard let link = URLComponents(string: resolved), link.scheme?.lowercased() == scheme.lowercased(),
                    link.host?.lowercased() == base.host?.lowercased(), link.port == base.port
                else { continue }
                path = link.percentEncodedPath
            }
            if path.hasPrefix("/") {
                guard path.hasPrefix(basePath) else { continue }
                path = String(path.dropFirst(basePath.count))
            } else if path.hasPrefix("./") {
                path = String(path.dropFirst(2))
            }
            let isDirectory = path.hasSuffix("/")
            if isDirectory { path.removeLast() }
            guard !path.isEmpty, !path.contains("/"), path != "..", path != "." else { continue }
            guard let name = TextEssentials.percentDecoded(path) else {
                builder.reject(path)
                continue
            }
            builder.add(Entry(name: name, isDirectory: isDirectory))
        }
        return builder.listing
    }

    /// Reads nginx's `autoindex_format json` listing: `[{"name": …, "type": "file"|"directory"|…, "size": …}]`.
    ///
    /// Entries of type `other` (sockets, devices) are skipped; names are taken as they are (JSON does not
    /// percent-encode them) and must be plain file names.
    /// - Throws: ``DeliveryError`` `listingUnreadable` when `json` is not such an array.
    public static func parse(json: Data) throws(DeliveryError) -> HTTPDirectoryListing {
        guard let array = try? JSONDecoder().decode([JSONEntry].self, from: json) else {
            throw DeliveryError(.listingUnreadable, "directory listing is not a JSON array")
        }
        var builder = Builder()
        for object in array {
            guard let name = object.name else {
                throw DeliveryError(.listingUnreadable, "directory listing entry without a name")
            }
            let type = object.type ?? "file"
            guard type == "file" || type == "directory" else { continue }
            let size = object.size
            builder.add(Entry(name: name, isDirectory: type == "directory", size: type == "file" ? size : nil))
        }
        return builder.listing
    }

    /// One element of nginx's JSON listing; anything that is not an object with a string `name` has no name.
    private struct JSONEntry: Decodable {
        var name: String?
        var type: String?
        var size: Int64?

        private enum Key: String, CodingKey { case name, type, size }

        init(from decoder: any Decoder) throws {
            guard let object = try? decoder.container(keyedBy: Key.self) else { return }
            name = try? object.decode(String.self, forKey: .name)
            type = try? object.decode(String.self, forKey: .type)
            size =
                (try? object.decode(Int64.self, forKey: .size))
                ?? (try? object.decode(Double.self, forKey: .size)).flatMap { Int64(exactly: $0.rounded(.towardZero)) }
        }
    }

    /// Whether `href` starts with a URL scheme (RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`).
    private static func hasScheme(_ href: String) -> Bool {
        let bytes = Array(href.utf8)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0,
            (bytes[0] | 0x20) >= UInt8(ascii: "a"), (bytes[0] | 0x20) <= UInt8(ascii: "z")
        else { return false }
        return bytes[1..<colon].allSatisfy {
            TextEssentials.isASCIIAlphanumeric($0) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-")
                || $0 == UInt8(ascii: ".")
        }
    }

    /// Collects entries once each, validating names.
    private struct Builder {
        var listing = HTTPDirectoryListing(entries: [])
        var seen: Set<String> = []

        mutating func add(_ entry: Entry) {
            guard PlainFileName.isValid(entry.name) else {
                reject(entry.name)
                return
            }
            if seen.insert(entry.name).inserted { listing.entries.append(entry) }
        }

        mutating func reject(_ name: String) {
            if !listing.rejectedNames.contains(name) { listing.rejectedNames.append(name) }
        }
    }

    private static let initialised: Bool = {
        xmlInitParser()
        return true
    }()

    /// Every `<a href>` of an HTML page, in document order.
    private static func links(in html: Data, name: String) throws(DeliveryError) -> [String] {
        _ = initialised
        guard !html.isEmpty else { return [] }
        guard html.count < Int(Int32.max) else { throw DeliveryError(.listingUnreadable, "\(name): page too large") }
        let options = Int32(
            HTML_PARSE_RECOVER.rawValue | HTML_PARSE_NONET.rawValue | HTML_PARSE_NOERROR.rawValue
                | HTML_PARSE_NOWARNING.rawValue)
        let document: htmlDocPtr? = html.withUnsafeBytes { raw in
            raw.withMemoryRebound(to: CChar.self) { buffer in
                htmlReadMemory(buffer.baseAddress, Int32(buffer.count), nil, "UTF-8", options)
            }
        }
        guard let document else { throw DeliveryError(.listingUnreadable, "\(name): not an HTML page") }
        defer { xmlFreeDoc(document) }
        var result: [String] = []
        var stack: [xmlNodePtr] = []
        if let root = xmlDocGetRootElement(document) { stack.append(root) }
        // Depth-first, document order: push children in reverse.
        while let node = stack.popLast() {
            if node.pointee.type == XML_ELEMENT_NODE, let rawName = node.pointee.name,
                String(cString: rawName).lowercased() == "a", let value = xmlGetProp(node, "href")
            {
                result.append(String(cString: value).trimmingWhitespace())
                cxml_free(value)
            }
            var children: [xmlNodePtr] = []
            var child = node.pointee.children
            while let current = child {
                children.append(current)
                child = current.pointee.next
            }
            stack.append(contentsOf: children.reversed())
        }
        return result
    }
}
