/// A validated e-mail address, optionally with a display name: `alice@example.org` or `Alice <alice@example.org>`.
///
/// Rejects anything that could inject headers or recipients: CR, LF and other control characters, more than
/// one address, stray or nested angle brackets, quotes or backslashes in the display name, addresses over
/// 254 characters, a missing or doubled `@`, non-ASCII or special characters in the address itself.
public struct MailAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The bare address (`local@domain`), as used in the SMTP envelope.
    public let address: String
    /// The display name, if one was given.
    public let displayName: String?

    /// Parses `text`.
    /// - Throws: ``DeliveryError`` with code `invalidMailAddress`.
    public init(_ text: String) throws(DeliveryError) {
        func reject(_ why: String) -> DeliveryError {
            DeliveryError(.invalidMailAddress, "invalid e-mail address \(text.debugDescription): \(why)")
        }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw reject("control characters (CR, LF, …) are not allowed")
        }
        let trimmed = text.trimmingSpaces
        let opens = trimmed.filter { $0 == "<" }.count
        let closes = trimmed.filter { $0 == ">" }.count
        if opens == 0 && closes == 0 {
            address = trimmed
            displayName = nil
        } else {
            guard opens == 1, closes == 1, trimmed.hasSuffix(">"), let open = trimmed.firstIndex(of: "<") else {
                throw reject("use 'Name <local@domain>' with exactly one pair of angle brackets at the end")
            }
            address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            var name = trimmed[..<open].trimmingSpaces
            if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 {
                name = String(name.dropFirst().dropLast())
            }
            if name.contains("\"") || name.contains("\\") { throw reject("quotes or backslashes in the display name") }
            displayName = name.isEmpty ? nil : name
        }
        if let problem = Self.problem(withAddress: address) { throw reject(problem) }
    }

    /// Creates an address from its parts (both validated as in ``init(_:)``).
    public init(address: String, displayName: String?) throws(DeliveryError) {
        if let displayName {
            try self.init("\"\(displayName)\" <\(address)>")
        } else {
            try self.init(address)
        }
    }

    /// The header form: `Name <local@domain>` (quoted or RFC 2047-encoded as needed) or the bare address.
    public var description: String { headerValue }

    /// The form used in `From:`/`To:` headers.
    public var headerValue: String {
        guard let displayName else { return address }
        if displayName.unicodeScalars.allSatisfy({ $0.isASCII }) {
            let atext = displayName.unicodeScalars.allSatisfy { Self.isAtext($0) || $0 == " " }
            return atext ? "\(displayName) <\(address)>" : "\"\(displayName)\" <\(address)>"
        }
        return "\(MailEncoding.encodedWord(displayName)) <\(address)>"
    }

    /// The domain part.
    public var domain: String { String(address[address.index(after: address.lastIndex(of: "@")!)...]) }

    static func isAtext(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "a"..."z", "A"..."Z", "0"..."9": return true
        default: return "!#$%&'*+-/=?^_`{|}~".unicodeScalars.contains(s)
        }
    }

    private static func problem(withAddress address: String) -> String? {
        if address.count > 254 { return "longer than 254 characters" }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return "needs exactly one '@'" }
        let local = parts[0]
        let domain = parts[1]
        if local.isEmpty || local.count > 64 { return "local part empty or over 64 characters" }
        if local.hasPrefix(".") || local.hasSuffix(".") || local.contains("..") {
            return "misplaced dots in the local part"
        }
        if !local.unicodeScalars.allSatisfy({ isAtext($0) || $0 == "." }) {
            return "invalid character in the local part"
        }
        if domain.isEmpty || domain.count > 253 { return "domain empty or too long" }
        if domain.hasPrefix("[") && domain.hasSuffix("]") {
            let literal = domain.dropFirst().dropLast()
            let octets = literal.split(separator: ".", omittingEmptySubsequences: false)
            return octets.count == 4 && octets.allSatisfy({ UInt8($0) != nil }) ? nil : "invalid address literal"
        }
        for label in domain.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty || label.count > 63 || label.hasPrefix("-") || label.hasSuffix("-") {
                return "invalid domain"
            }
            let ok = label.unicodeScalars.allSatisfy {
                switch $0 {
                case "a"..."z", "A"..."Z", "0"..."9", "-": return true
                default: return false
                }
            }
            if !ok { return "invalid character in the domain" }
        }
        return nil
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
