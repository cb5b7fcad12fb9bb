/// A UTC instant broken down into proleptic-Gregorian fields, and the fixed-format texts the agent writes from it
/// (mail `Date` headers, ISO 8601 stamps): no `DateFormatter`, `Calendar` or ICU, always English, always UTC.
///
/// The day arithmetic is Howard Hinnant's `days_from_civil` / `civil_from_days`.
public struct CivilTime: Sendable, Hashable {
    public let year: Int
    /// 1…12.
    public let month: Int
    /// 1…31.
    public let day: Int
    public let hour: Int
    public let minute: Int
    public let second: Int
    /// 0…999.
    public let millisecond: Int
    /// 0 = Sunday … 6 = Saturday.
    public let weekday: Int

    /// The fields of the instant `millisecondsSince1970` after the epoch (earlier instants round towards the past).
    public init(millisecondsSince1970 ms: Int64) {
        let totalSeconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let days = totalSeconds >= 0 ? totalSeconds / 86_400 : (totalSeconds - 86_399) / 86_400
        let secondOfDay = Int(totalSeconds - days * 86_400)
        (year, month, day) = Self.civil(fromDays: Int(days))
        hour = secondOfDay / 3600
        minute = secondOfDay / 60 % 60
        second = secondOfDay % 60
        millisecond = Int(ms - totalSeconds * 1000)
        let w = (Int(days) + 4) % 7  // 1970-01-01 was a Thursday
        weekday = w < 0 ? w + 7 : w
    }

    /// The fields of `secondsSince1970` (a `Date`'s `timeIntervalSince1970`) rounded to the nearest millisecond, as
    /// Foundation's date formatters do (`…:22.9996` is written as second 23).
    public init(secondsSince1970: Double) {
        self.init(millisecondsSince1970: Int64((secondsSince1970 * 1000).rounded()))
    }

    /// RFC 5322 `Date` header value in UTC: `Sat, 05 Dec 2026 14:03:09 +0000`.
    public var rfc5322: String {
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return days[weekday] + ", " + Self.digits(day, 2) + " " + months[month - 1] + " " + Self.digits(year, 4) + " "
            + Self.digits(hour, 2) + ":" + Self.digits(minute, 2) + ":" + Self.digits(second, 2) + " +0000"
    }

    /// ISO 8601 extended, whole seconds, UTC: `2026-12-05T14:03:09Z` (`ISO8601DateFormatter`'s default).
    public var iso8601Seconds: String {
        Self.digits(year, 4) + "-" + Self.digits(month, 2) + "-" + Self.digits(day, 2) + "T" + Self.digits(hour, 2)
            + ":" + Self.digits(minute, 2) + ":" + Self.digits(second, 2) + "Z"
    }

    /// ISO 8601 basic, whole seconds, UTC: `20261205T140309Z`.
    public var iso8601Basic: String {
        Self.digits(year, 4) + Self.digits(month, 2) + Self.digits(day, 2) + "T" + Self.digits(hour, 2)
            + Self.digits(minute, 2) + Self.digits(second, 2) + "Z"
    }

    /// `value` in decimal, zero-padded to `width` digits (negative values keep their sign in front).
    public static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value.magnitude)
        let padded = String(repeating: "0", count: max(0, width - text.count)) + text
        return value < 0 ? "-" + padded : padded
    }

    /// Days since 1970-01-01 of a proleptic-Gregorian date.
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The proleptic-Gregorian (year, month, day) of a day count since 1970-01-01.
    public static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Days in `month` of `year` (leap years by the Gregorian rule).
    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
