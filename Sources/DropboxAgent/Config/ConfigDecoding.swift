import FoundationEssentials
import Glibc

/// A coding key for reading whatever keys an object has.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// A problem in the configuration file, with the JSON path where it is.
struct ConfigurationError: Error, CustomStringConvertible {
    var path: String
    var message: String
    var description: String { "\(path): \(message)" }
}

extension Decoder {
    /// Throws when the object has keys the section does not know (a typo must not be silently ignored).
    func rejectUnknownKeys<Key: CodingKey & CaseIterable>(_ known: Key.Type) throws {
        let container = try container(keyedBy: AnyCodingKey.self)
        let knownNames = Set(Key.allCases.map(\.stringValue))
        for key in container.allKeys where !knownNames.contains(key.stringValue) {
            let path = (codingPath + [key]).map(\.stringValue).joined(separator: ".")
            throw ConfigurationError(
                path: "$." + path, message: "unknown key (known: \(knownNames.sorted().joined(separator: ", ")))")
        }
    }
}

extension KeyedDecodingContainer {
    /// The value for `key`, or `fallback` when the key is absent or null.
    func value<T: Decodable>(_ key: Key, default fallback: @autoclosure () -> T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback()
    }
}
