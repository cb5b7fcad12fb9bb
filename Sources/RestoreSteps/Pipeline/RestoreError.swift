/// Why a restore (or a request) could not go on: a stable code, a message a person can act on, and a hint.
///
/// Modelled on swift-subprocess's `SubprocessError`: a struct with a code rather than a large enum, so new
/// causes can be added without breaking clients. The `code` string is part of the status-file contract.
public struct RestoreError: Error, Sendable, Codable, Hashable, CustomStringConvertible {
    /// A stable, lowerCamelCase identifier of the cause (`manifestMissingSession`, `checksumMismatch`, …).
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible,
        ExpressibleByStringLiteral
    {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }
    }

    /// The cause.
    public var code: Code
    /// What went wrong, with the decisive evidence (file, line, value).
    public var message: String
    /// What to do about it, when there is something to do.
    public var hint: String?
    /// The step that failed, once known.
    public var step: StepName?
    /// Whether trying again later may succeed (network trouble, a busy store), as opposed to a problem with the
    /// request or the data that will fail the same way every time.
    public var isTransient: Bool

    public init(_ code: Code, _ message: String, hint: String? = nil, step: StepName? = nil, isTransient: Bool = false)
    {
        self.code = code
        self.message = message
        self.hint = hint
        self.step = step
        self.isTransient = isTransient
    }

    public var description: String {
        "[\(code)] \(message)" + (hint.map { " (hint: \($0))" } ?? "")
    }
}

extension RestoreError.Code {
    /// A step failed for a reason its own code did not anticipate (a bug, or an unexpected system error).
    public static let internalError: Self = "internalError"
    /// The request was cancelled (`NAME.cancel` or `dropbox-agent cancel`).
    public static let cancelled: Self = "cancelled"
    /// A step ran past its time limit.
    public static let timedOut: Self = "timedOut"
}
