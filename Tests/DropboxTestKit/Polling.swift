import Foundation
#if canImport(Testing)
public import Testing

/// Thrown by ``waitUntil(_:timeout:sourceLocation:_:)`` when its condition never held.
public struct TimedOut: Error, CustomStringConvertible {
    /// What was awaited.
    public var description: String
    /// Creates the error.
    public init(description: String) { self.description = description }
}

/// Polls `condition` every few milliseconds until it holds; records an issue naming `what` and throws
/// ``TimedOut`` after `timeout`. Synchronisation by a deadline, never by a fixed sleep.
public func waitUntil(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(10),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        if ContinuousClock.now >= deadline {
            let description = what()
            Issue.record("timed out after \(timeout) waiting for: \(description)", sourceLocation: sourceLocation)
            throw TimedOut(description: description)
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}
#endif

/// Polls `condition` every `interval` until it holds or `limit` passes; returns whether it held. For tests that
/// assert on the outcome themselves.
public func eventually(
    within limit: Duration, every interval: Duration = .milliseconds(20), _ condition: () -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while !condition() {
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
    return true
}

/// The blocking form of ``eventually(within:every:_:)`` for synchronous tests: polls every 20 ms until
/// `condition` holds or `seconds` pass, and returns whether it held.
@discardableResult
public func poll(for seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}
