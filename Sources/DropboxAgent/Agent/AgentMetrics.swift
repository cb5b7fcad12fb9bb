import Delivery
import FoundationEssentials
import Glibc
import Synchronization

/// Counters the agent exposes (Prometheus text in `metrics.textfile`, default `<data>/metrics.prom`, and
/// `status --json`).
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
        var deliveriesExpired = 0
    }
    private let counters = Mutex(Counters())
    /// Durations, outcomes by error code, last success.
    let detail = MetricsDetail()

    func add(_ key: WritableKeyPath<Counters, Int>, _ n: Int = 1) { counters.withLock { $0[keyPath: key] += n } }
    func set(_ key: WritableKeyPath<Counters, Int>, _ n: Int) { counters.withLock { $0[keyPath: key] = n } }
    var snapshot: Counters { counters.withLock { $0 } }

    /// What the agent sees right now (gauges).
    struct Live: Sendable {
        var running = 0
        var queued = 0
        var waiting = 0
        var watching = true
        var oldestQueuedAgeSeconds = 0.0
        var casaProcesses = 0
        var cache: CacheStatistics?
        var startTime = 0.0
        var now = Date().timeIntervalSince1970
    }

    private static var counterHelp: [(WritableKeyPath<Counters, Int>, String, String)] {
        [
            (\.claims, "claims_total", "Requests claimed from the spool by this agent."),
            (\.claimsLost, "claims_lost_total", "Claims lost to another agent on the same spool."),
            (\.rejected, "rejected_total", "Requests rejected at intake (unsafe, invalid, incomplete, badly named)."),
            (\.linked, "linked_total", "Requests linked to an identical earlier request instead of running."),
            (\.takeovers, "takeovers_total", "Requests taken over from an agent whose lease expired or which died."),
            (\.resumes, "resumes_total", "Requests resumed after this agent's own clean stop."),
            (\.succeeded, "succeeded_total", "Requests that ended succeeded."),
            (\.failed, "failed_total", "Requests that ended failed."),
            (\.cancelled, "cancelled_total", "Requests that ended cancelled."),
            (\.watcherEvents, "watcher_events_total", "Spool watcher events (inotify events and rescan finds)."),
            (\.watcherOverflows, "watcher_overflows_total", "inotify queue overflows (each followed by a rescan)."),
            (\.watcherRescans, "watcher_rescans_total", "Full rescans of the spool."),
            (
                \.watcherRescanOnlyFinds, "watcher_rescan_only_finds_total",
                "Files found only by a rescan (not 0: inotify missed events)."
            ),
            (\.watchLost, "watch_lost_total", "Times the spool stopped being watched (deleted, unmounted)."),
            (
                \.deliveriesExpired, "deliveries_expired_total",
                "Deliveries removed from the download area after delivery.retentionDays."
            ),
        ]
    }

    /// Prometheus text exposition of everything, `# HELP` and `# TYPE` on every family.
    func prometheusText(_ live: Live) -> String {
        let c = snapshot
        let d = detail.snapshot
        let p = "dropbox_agent_"
        var out = PrometheusExposition()
        for (key, name, help) in Self.counterHelp { out.counter(p + name, help, Double(c[keyPath: key])) }
        out.counter(
            p + "requests_finished_total",
            "Requests ended, by final state and error code (code \"\" when none, \"other\" beyond the bounded set).",
            samples: d.outcomes.sorted { ($0.key.state, $0.key.code) < ($1.key.state, $1.key.code) }.map {
                ([("state", $0.key.state), ("code", $0.key.code)], Double($0.value))
            })
        out.histogram(
            p + "step_duration_seconds", "Duration of completed restore steps.", bounds: MetricsDetail.stepBounds,
            series: d.steps.sorted { $0.key < $1.key }.map { ([("step", $0.key)], $0.value) })
        out.histogram(
            p + "request_duration_seconds", "Duration of requests from claim to their final state.",
            bounds: MetricsDetail.requestBounds,
            series: d.requests.sorted { $0.key < $1.key }.map { ([("state", $0.key)], $0.value) })
        out.gauge(
            p + "last_success_timestamp_seconds",
            "Unix time of the last request that succeeded (0: none since the agent started).", d.lastSuccess)
        out.counter(
            p + "fetched_bytes_total", "Bytes fetched from archive stores through the file cache.",
            Double(live.cache?.bytesFetched ?? 0))
        out.counter(p + "cache_hits_total", "Archive files served from the file cache.", Double(live.cache?.hits ?? 0))
        out.counter(p + "cache_misses_total", "Archive files that had to be fetched.", Double(live.cache?.misses ?? 0))
        out.counter(
            p + "cache_served_bytes_total", "Bytes served from the file cache instead of being fetched.",
            Double(live.cache?.bytesServedFromCache ?? 0))
        out.gauge(p + "cache_bytes", "Bytes held in the file cache.", Double(live.cache?.currentBytes ?? 0))
        out.gauge(p + "queue_length", "Valid requests waiting for a free slot.", Double(live.queued))
        out.gauge(
            p + "oldest_queued_age_seconds", "Seconds the oldest queued request has waited (0 when none).",
            live.oldestQueuedAgeSeconds)
        out.gauge(p + "waiting_requests", "Requests seen but not yet complete or stable.", Double(live.waiting))
        out.gauge(p + "running_restores", "Restores running in this agent.", Double(live.running))
        out.gauge(
            p + "casa_processes_running", "Processes working in a restore's working area (CASA and its children).",
            Double(live.casaProcesses))
        out.gauge(
            p + "spool_watched", "1 while the spool is watched (inotify or polling), 0 after the watch was lost.",
            live.watching ? 1 : 0)
        out.gauge(p + "start_time_seconds", "Unix time the agent started.", live.startTime)
        out.gauge(
            p + "metrics_updated_timestamp_seconds",
            "Unix time this file was written (a stale value means the agent is down or hung).", live.now)
        return out.text
    }
}
