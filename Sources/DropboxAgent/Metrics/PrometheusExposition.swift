import Delivery
import FoundationEssentials
import Glibc

/// Builds Prometheus text exposition (format 0.0.4, what node-exporter's textfile collector reads).
///
/// Every family gets `# HELP` and `# TYPE`; names carry their base unit (`_seconds`, `_bytes`) and counters end
/// in `_total`, per <https://prometheus.io/docs/practices/naming/>. Label values are escaped as the format asks.
struct PrometheusExposition {
    typealias Labels = [(String, String)]
    private(set) var text = ""

    mutating func counter(_ name: String, _ help: String, _ value: Double) {
        family(name, help, "counter")
        sample(name, [], value)
    }

    mutating func counter(_ name: String, _ help: String, samples: [(Labels, Double)]) {
        family(name, help, "counter")
        for (labels, value) in samples { sample(name, labels, value) }
    }

    mutating func gauge(_ name: String, _ help: String, _ value: Double) {
        family(name, help, "gauge")
        sample(name, [], value)
    }

    /// A histogram family: one series per label set, with cumulative `_bucket`, `_sum` and `_count`.
    mutating func histogram(_ name: String, _ help: String, bounds: [Double], series: [(Labels, Histogram)]) {
        family(name, help, "histogram")
        for (labels, h) in series {
            var cumulative = 0
            for (i, bound) in bounds.enumerated() {
                cumulative += h.bucketCounts[i]
                sample(name + "_bucket", labels + [("le", Self.number(bound))], Double(cumulative))
            }
            sample(name + "_bucket", labels + [("le", "+Inf")], Double(h.count))
            sample(name + "_sum", labels, h.sum)
            sample(name + "_count", labels, Double(h.count))
        }
    }

    private mutating func family(_ name: String, _ help: String, _ type: String) {
        let escapedHelp = help.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n")
        text += "# HELP \(name) \(escapedHelp)\n# TYPE \(name) \(type)\n"
    }

    private mutating func sample(_ name: String, _ labels: Labels, _ value: Double) {
        var line = name
        if !labels.isEmpty {
            line += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += line + " " + Self.number(value) + "\n"
    }

    static func escape(_ value: String) -> String {
        value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")
            .replacingAll("\n", with: "\\n")
    }

    /// Integers without a fraction, others in Swift's shortest round-tripping form.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

/// Observations in fixed buckets (non-cumulative counts per bucket; the exposition accumulates them).
struct Histogram: Sendable, Equatable {
    var bucketCounts: [Int]
    var sum = 0.0
    var count = 0

    init(bucketCount: Int) { bucketCounts = Array(repeating: 0, count: bucketCount) }

    mutating func observe(_ value: Double, bounds: [Double]) {
        if let i = bounds.firstIndex(where: { value <= $0 }) { bucketCounts[i] += 1 }
        sum += value
        count += 1
    }
}
