@preconcurrency internal import Dispatch

extension Duration {
    /// The duration as a dispatch interval, at least one millisecond, saturating at `Int.max` nanoseconds.
    var dispatchInterval: DispatchTimeInterval {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let nanoseconds =
            overflow ? Int64.max : scaled.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
        return .nanoseconds(Int(max(nanoseconds, 1_000_000)))
    }
}
