public import FoundationEssentials

/// A value stored in or bound to SQLite, one case per storage class.
public enum SQLiteValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
}

extension SQLiteValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(nilLiteral: ()) { self = .null }
}

extension SQLiteValue {
    /// `.text(value)` or `.null` for nil.
    public static func optional(_ value: String?) -> SQLiteValue { value.map(SQLiteValue.text) ?? .null }
    /// `.integer(value)` or `.null` for nil.
    public static func optional(_ value: Int64?) -> SQLiteValue { value.map(SQLiteValue.integer) ?? .null }
    /// `.integer(Int64(value))`.
    public static func int(_ value: Int) -> SQLiteValue { .integer(Int64(value)) }
}

/// One result row: column names and values in select order.
public struct Row: Sendable {
    /// Column names as SQLite reports them.
    public let columns: [String]
    /// Values in the same order as ``columns``.
    public let values: [SQLiteValue]

    /// The value of the named column (case-insensitive), or `.null` when absent.
    public subscript(_ name: String) -> SQLiteValue {
        let wanted = name.lowercased()
        if let i = columns.firstIndex(where: { $0.lowercased() == wanted }) { return values[i] }
        return .null
    }

    /// The named column as text (integers and reals are formatted), or nil for NULL.
    public func string(_ name: String) -> String? {
        switch self[name] {
        case .text(let s): return s
        case .integer(let i): return String(i)
        case .real(let d): return String(d)
        case .blob(let d): return String(decoding: d, as: UTF8.self)
        case .null: return nil
        }
    }

    /// The named column as an integer, or nil for NULL or non-numeric text.
    public func int64(_ name: String) -> Int64? {
        switch self[name] {
        case .integer(let i): return i
        case .real(let d): return Int64(d)
        case .text(let s): return Int64(s)
        default: return nil
        }
    }

    /// The named column as `Int`.
    public func int(_ name: String) -> Int? { int64(name).map(Int.init) }

    /// The named column as `Double`.
    public func double(_ name: String) -> Double? {
        switch self[name] {
        case .integer(let i): return Double(i)
        case .real(let d): return d
        case .text(let s): return Double(s)
        default: return nil
        }
    }
}
