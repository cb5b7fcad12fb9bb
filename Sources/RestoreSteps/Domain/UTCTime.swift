internal import Delivery
public import FoundationEssentials
internal import Glibc

/// A UTC instant with millisecond precision, written as RFC 3339 (`2024-03-01T10:00:00Z`,
/// `2024-03-01T10:00:00.250Z`).
///
/// ALMA metadata spells times several ways; ``init(parsing:)`` accepts RFC 3339 with `Z` or an offset, the
/// OUSStatus form `yyyy-MM-dd HH:mm:ss.SSS` and a bare `yyyy-MM-ddTHH:mm:ss[.fff]` (both taken as UTC).
/// Millisecond integers make ordering and equality exact, so session numbering never depends on rounding.
public struct UTCTime: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public let millisecondsSince1970: Int64

    /// The instant `milliseconds` after the epoch.
    public init(millisecondsSince1970: Int64) { self.millisecondsSince1970 = millisecondsSince1970 }

    /// The instant of `date`, truncated to milliseconds.
    public init(_ date: Date) {
        self.millisecondsSince1970 = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// As a Foundation date.
    public var date: Date { Date(timeIntervalSince1970: Double(millisecondsSince1970) / 1000) }

    public static func < (lhs: UTCTime, rhs: UTCTime) -> Bool { lhs.millisecondsSince1970 < rhs.millisecondsSince1970 }

    /// RFC 3339, UTC, milliseconds only when non-zero.
    public var description: String {
        let c = components
        var text = String(fixedWidthDescription.prefix(19))
        if c.millisecond != 0 { text += "." + CivilTime.digits(c.millisecond, 3) }
        return text + "Z"
    }

    /// RFC 3339 with milliseconds always present (`2024-03-01T10:00:00.000Z`): fixed width, so stored texts
    /// sort in time order.
    public var fixedWidthDescription: String {
        let c = components
        // Digits by hand, not `String(format:)`: this is written for every status write and log line, and the
        // formatter was 4 % of a burst's CPU (bench/README.md).
        var text = [UInt8]()
        text.reserveCapacity(24)
        func append(_ value: Int, width: Int, then separator: Character) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            let v = max(0, value)
            while divisor > 0 {
                text.append(UInt8(48 + (v / divisor) % 10))
                divisor /= 10
            }
            text.append(separator.asciiValue!)
        }
        append(c.year, width: 4, then: "-")
        append(c.month, width: 2, then: "-")
        append(c.day, width: 2, then: "T")
        append(c.hour, width: 2, then: ":")
        append(c.minute, width: 2, then: ":")
        append(c.second, width: 2, then: ".")
        append(c.millisecond, width: 3, then: "Z")
        return String(decoding: text, as: UTF8.self)
    }

    /// The basic ISO 8601 form without separators or fraction (`20240301T100000`), for time-stamped file names.
    public var compactDescription: String {
        String(fixedWidthDescription.prefix(19).filter { $0 != "-" && $0 != ":" })
    }

    /// Parses the spellings listed on the type; nil for anything else (including impossible dates).
    public init?(parsing text: String) {
        let scalars = Array(text.trimmingWhitespace().utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= scalars.count else { return nil }
            var value = 0
            for byte in scalars[index..<(index + digits)] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += digits
            return value
        }
        func expect(_ options: Set<UInt8>) -> Bool {
            guard index < scalars.count, options.contains(scalars[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect([45]), let month = number(2), expect([45]), let day = number(2),
            expect([84, 116, 32]), let hour = number(2), expect([58]), let minute = number(2), expect([58]),
            let second = number(2)
        else { return nil }
        var millisecond = 0
        if index < scalars.count, scalars[index] == 46 {  // "."
            index += 1
            var digits = 0
            var fraction = 0
            while index < scalars.count, scalars[index] >= 48, scalars[index] <= 57 {
                if digits < 3 { fraction = fraction * 10 + Int(scalars[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { fraction *= 10 }
            millisecond = fraction
        }
        var offsetMinutes = 0
        if index < scalars.count {
            if expect([90, 122]) {  // Z
            } else if index < scalars.count, scalars[index] == 43 || scalars[index] == 45 {
                let sign = scalars[index] == 45 ? -1 : 1
                index += 1
                guard let oh = number(2), expect([58]), let om = number(2), oh < 24, om < 60 else { return nil }
                offsetMinutes = sign * (oh * 60 + om)
            } else {
                return nil
            }
        }
        guard index == scalars.count, (1...12).contains(month), day >= 1,
            day <= CivilTime.daysIn(month: month, year: year),
            hour < 24, minute < 60, second < 60
        else { return nil }
        let days = CivilTime.daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        self.millisecondsSince1970 = seconds * 1000 + Int64(millisecond)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let time = UTCTime(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not a UTC time (2024-03-01T10:00:00Z): \(text)")
        }
        self = time
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    // MARK: - Calendar arithmetic (Delivery's CivilTime)

    private var components: CivilTime { CivilTime(millisecondsSince1970: millisecondsSince1970) }
}
