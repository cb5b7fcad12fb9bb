import Foundation
import Synchronization

/// Counters the agent exposes (Prometheus text in `<data>/metrics.prom`, and `status --json`).
final class AgentMetrics: Sendable {
    struct Counters: Codable, Sendable, Equatable {
        var claims = 0
        var claimsLost = 0
        var rejected = 0
        var linked = 0
        var takeovers = 0
        var resumes = 0
        var succeeded = 0
        var failed = 0
        var cancelled = 0
        var watcherEvents = 0
        var watcherOverflows = 0
        var watcherRescans = 0
        var watcherRescanOnlyFinds = 0
        var watchLost = 0
    }
    private let counters = Mutex(Counters())

    func add(_ key: WritableKeyPath<Counters, Int>, _ n: Int = 1) { counters.withLock { $0[keyPath: key] += n } }
    func set(_ key: WritableKeyPath<Counters, Int>, _ n: Int) { counters.withLock { $0[keyPath: key] = n } }
    var snapshot: Counters { counters.withLock { $0 } }

    /// Prometheus text exposition of the counters plus the given gauges.
    func prometheusText(gauges: [String: Double]) -> String {
        let c = snapshot
        var lines: [String] = []
        let mirror = Mirror(reflecting: c)
        for child in mirror.children {
            guard let label = child.label, let value = child.value as? Int else { continue }
            let name = "dropbox_agent_" + label.replacingOccurrences(of: "([a-z])([A-Z])", with: "$1_$2", options: .regularExpression).lowercased() + "_total"
            lines.append("# TYPE \(name) counter")
            lines.append("\(name) \(value)")
        }
        for (name, value) in gauges.sorted(by: { $0.key < $1.key }) {
            lines.append("# TYPE dropbox_agent_\(name) gauge")
            lines.append("dropbox_agent_\(name) \(value)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
