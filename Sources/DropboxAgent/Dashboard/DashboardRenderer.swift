import Delivery
import FoundationEssentials
import Glibc
import RestoreSteps

/// Renders the operators' dashboard: static, self-contained HTML (inline CSS, inline SVG, no JavaScript), refreshed
/// by the browser with `<meta http-equiv="refresh">` and rewritten by the agent.
///
/// The pages show request names, MOUSes and mail addresses: they are for operators only (README: nginx snippet).
struct DashboardRenderer {
    /// What the agent published: live requests, the most recent finished ones, counts per minute.
    var state: DashboardIndex
    var now: Date
    var refreshSeconds: Int
    var host: String
    var pid: Int32
    var version: String
    /// Counts from this agent (the queue order is the agent's own).
    var queueOrder: [String] = []

    static let finishedShown = DashboardIndex.finishedKept

    /// The file name of a request's page (relative to the index).
    static func pageName(_ request: String) -> String { "requests/" + request + ".html" }

    // MARK: - Index

    func index() -> String {
        let documents = state.live.values
        let running = documents.filter { $0.state == .running }.sorted { ($0.startedAt ?? "") < ($1.startedAt ?? "") }
        let queuedDocs = documents.filter { $0.state == .queued }
        let queued = queuedDocs.sorted { a, b in
            let ia = queueOrder.firstIndex(of: a.request) ?? Int.max
            let ib = queueOrder.firstIndex(of: b.request) ?? Int.max
            return ia != ib ? ia < ib : (a.submittedAt ?? "") < (b.submittedAt ?? "")
        }
        let waiting = documents.filter { $0.state == .waiting }
        let finished = state.finished
        let lastDay = state.lastDay(now: now)
        let succeeded24 = lastDay.succeeded
        let failed24 = lastDay.failedOrRejected
        let hourly = state.hourly(now: now)

        var agents: [String: Int] = ["\(host) (pid \(pid))": 0]
        for d in running { if let a = d.agent { agents["\(a.host) (pid \(a.pid))", default: 0] += 1 } }

        var body = """
            <header><h1>dropbox-agent</h1><p class="meta">\(e(host)) · pid \(pid) · version \(e(version)) · updated <time id="updated" datetime="\(Timestamp.string(now))">\(Timestamp.string(now))</time> · refreshes every \(refreshSeconds) s</p></header>
            <section class="summary">
            <div class="card"><span class="n" id="count-running">\(running.count)</span> running</div>
            <div class="card"><span class="n" id="count-queued">\(queued.count)</span> queued</div>
            <div class="card"><span class="n" id="count-waiting">\(waiting.count)</span> waiting</div>
            <div class="card ok"><span class="n" id="count-succeeded-24h">\(succeeded24)</span> succeeded (24 h)</div>
            <div class="card bad"><span class="n" id="count-failed-24h">\(failed24)</span> failed or rejected (24 h)</div>
            </section>
            <section><h2>Agents</h2><table id="agents"><thead><tr><th>agent</th><th>running here</th></tr></thead><tbody>
            """
        for (name, count) in agents.sorted(by: { $0.key < $1.key }) {
            body += "<tr><td>\(e(name))</td><td>\(count)</td></tr>"
        }
        body += "</tbody></table></section>\n<section><h2>Running</h2>"
        if running.isEmpty {
            body += "<p class=\"empty\">nothing running</p>"
        } else {
            body +=
                "<table id=\"running\"><thead><tr><th>request</th><th>MOUS</th><th>step</th><th>progress</th><th>ETA</th><th>running for</th></tr></thead><tbody>"
            for d in running { body += runningRow(d) }
            body += "</tbody></table>"
        }
        body += "</section>\n<section><h2>Queue</h2>"
        if queued.isEmpty && waiting.isEmpty {
            body += "<p class=\"empty\">the queue is empty</p>"
        } else {
            body +=
                "<table id=\"queue\"><thead><tr><th>#</th><th>request</th><th>MOUS</th><th>state</th><th>waiting for</th></tr></thead><tbody>"
            for (i, d) in (queued + waiting).enumerated() {
                body +=
                    "<tr class=\"queued\" data-request=\"\(e(d.request))\"><td>\(i + 1)</td><td>\(link(d))</td><td>\(e(d.mous ?? ""))</td><td>\(d.state.rawValue)</td><td>\(age(since: d.submittedAt))</td></tr>"
            }
            body += "</tbody></table>"
        }
        body += "</section>\n<section><h2>Last 24 hours</h2><div class=\"charts\">"
        body += chart(id: "chart-succeeded", title: "succeeded per hour", buckets: hourly.succeeded, colour: "#2e7d32")
        body += chart(
            id: "chart-failed", title: "failed or rejected per hour", buckets: hourly.failedOrRejected,
            colour: "#c62828")
        body += "</div></section>\n<section><h2>Finished (last \(Self.finishedShown))</h2>"
        if finished.isEmpty {
            body += "<p class=\"empty\">none yet</p>"
        } else {
            body +=
                "<table id=\"finished\"><thead><tr><th>request</th><th>MOUS</th><th>state</th><th>finished</th><th>duration</th><th>error</th></tr></thead><tbody>"
            for d in finished.prefix(Self.finishedShown) {
                body +=
                    "<tr class=\"\(d.state.rawValue)\" data-request=\"\(e(d.request))\" data-state=\"\(d.state.rawValue)\"><td>\(link(d))</td><td>\(e(d.mous ?? ""))</td><td><span class=\"state \(d.state.rawValue)\">\(d.state.rawValue)</span></td><td>\(e(d.finishedAt ?? ""))</td><td>\(duration(d))</td><td class=\"code\">\(e(d.error?.code ?? ""))</td></tr>"
            }
            body += "</tbody></table>"
        }
        body += "</section>"
        return page(title: "dropbox-agent on \(host)", body: body, base: "")
    }

    private func runningRow(_ d: StatusDocument) -> String {
        let stepNumber = d.step?.number ?? 0
        let fraction = d.progress?.fraction
        var segments = ""
        for step in StepName.allCases {
            let cls = step.number < stepNumber ? "done" : step.number == stepNumber ? "current" : "pending"
            let width = step.number == stepNumber ? Int(((fraction ?? 0) * 100).rounded()) : (cls == "done" ? 100 : 0)
            segments +=
                "<span class=\"seg \(cls)\" title=\"\(step.number) \(step.rawValue)\"><span style=\"width:\(width)%\"></span></span>"
        }
        let overall = (Double(max(0, stepNumber - 1)) + (fraction ?? 0)) / Double(StepName.allCases.count)
        let progressText = fraction.map { "\(Int(($0 * 100).rounded())) %" } ?? (d.progress?.message.map(e) ?? "")
        let eta = d.progress?.etaSeconds.map { Self.humanDuration($0) } ?? "—"
        return """
            <tr class="running" data-request="\(e(d.request))" data-step="\(stepNumber)"><td>\(link(d))</td><td>\(e(d.mous ?? ""))</td>\
            <td>\(stepNumber)/6 \(e(d.step?.name ?? ""))</td>\
            <td><div class="steps">\(segments)</div><progress class="overall" value="\(TextEssentials.fixed(overall, fractionDigits: 3))" max="1"></progress> \
            <span class="pct">\(progressText)</span></td><td class="eta">\(eta)</td><td>\(age(since: d.startedAt))</td></tr>
            """
    }

    /// Hourly bars over the last 24 h as inline SVG (oldest left; `buckets[23]` is the last hour).
    private func chart(id: String, title: String, buckets: [Int], colour: String) -> String {
        let top = max(1, buckets.max() ?? 1)
        var bars = ""
        for (i, n) in buckets.enumerated() {
            let h = Double(n) / Double(top) * 80
            bars +=
                "<rect x=\"\(i * 10 + 1)\" y=\"\(TextEssentials.fixed(90 - h, fractionDigits: 1))\" width=\"8\" height=\"\(TextEssentials.fixed(h, fractionDigits: 1))\" fill=\"\(colour)\"><title>\(24 - i) h ago: \(n)</title></rect>"
        }
        return """
            <figure><svg id="\(id)" role="img" aria-label="\(e(title))" viewBox="0 0 240 100" width="480" height="200" data-total="\(buckets.reduce(0, +))">\
            <line x1="0" y1="90" x2="240" y2="90" stroke="#999"/>\(bars)<text x="2" y="9" font-size="8">max \(top)</text></svg>\
            <figcaption>\(e(title)): \(buckets.reduce(0, +))</figcaption></figure>
            """
    }

    // MARK: - A request's page

    func requestPage(_ d: StatusDocument, logExcerpt: String?) -> String {
        var body = """
            <header><p><a href="../index.html">← dashboard</a></p><h1>\(e(d.request))</h1>
            <p class="meta">state <span class="state \(d.state.rawValue)" id="state">\(d.state.rawValue)</span>\(d.step.map { " · step \($0.number) \(e($0.name))" } ?? "") · updated \(e(d.updatedAt))</p></header>
            <table class="facts">
            """
        let facts: [(String, String?)] = [
            ("MOUS", d.mous), ("request id", d.requestId), ("attempt", d.attempt.map(String.init)),
            ("agent", d.agent.map { "\($0.host) (pid \($0.pid))" }),
            ("submitted", d.submittedAt), ("started", d.startedAt), ("finished", d.finishedAt),
            ("duration", d.startedAt == nil ? nil : duration(d)),
            (
                "CASA",
                d.casa.map { "\($0.version) (\($0.installation)); tables made with \($0.manifestVersion ?? "unknown")" }
            ),
            (
                "execution",
                d.execution.map {
                    "\($0.backend) job \($0.jobIds.isEmpty ? "(not yet submitted)" : $0.jobIds.joined(separator: ", ")): \($0.state)"
                }
            ),
            (
                "progress",
                d.progress.map { p in
                    [
                        p.fraction.map { "\(Int(($0 * 100).rounded())) %" }, p.message,
                        p.etaSeconds.map { "ETA " + Self.humanDuration($0) },
                    ].compactMap { $0 }.joined(separator: " · ")
                }
            ),
            (
                "delivered",
                d.result.map { "\($0.url ?? $0.deliveryPath) — \($0.measurementSets.joined(separator: ", "))" }
            ),
            ("working area", d.workingArea), ("request file", d.requestFile),
        ]
        for (k, v) in facts { if let v { body += "<tr><th>\(e(k))</th><td>\(e(v))</td></tr>" } }
        body += "</table>"
        if let err = d.error {
            body +=
                "<section class=\"error\" id=\"error\"><h2>Error <code>\(e(err.code))</code></h2><p>\(e(err.message))</p>\(err.hint.map { "<p class=\"hint\">\(e($0))</p>" } ?? "")</section>"
        }
        for w in d.warnings ?? [] { body += "<p class=\"warning\">\(e(w))</p>" }
        if let notes = d.notifications, !notes.isEmpty {
            body +=
                "<section><h2>Mail</h2><ul>"
                + notes.map { "<li>\(e($0.to)): \(e($0.state))\($0.error.map { " — " + e($0) } ?? "")</li>" }.joined()
                + "</ul></section>"
        }
        body +=
            "<section><h2>History</h2><table id=\"history\"><thead><tr><th>at</th><th>state</th><th>step</th><th>message</th></tr></thead><tbody>"
        for h in d.history {
            body +=
                "<tr><td>\(e(h.at))</td><td>\(h.state.rawValue)</td><td>\(h.step.map { "\($0.number) \(e($0.name))" } ?? "")</td><td>\(e(h.message ?? ""))</td></tr>"
        }
        body += "</tbody></table></section>"
        if let logExcerpt {
            body += "<section><h2>Log excerpt</h2><pre id=\"log\">\(e(logExcerpt))</pre></section>"
        }
        return page(title: "\(d.request) — dropbox-agent", body: body, base: "../")
    }

    // MARK: - Pieces

    private func page(title: String, body: String, base: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="\(refreshSeconds)">
        <meta name="robots" content="noindex"><title>\(e(title))</title>
        <style>\(Self.css)</style></head>
        <body>
        \(body)
        <footer>Written by dropbox-agent \(e(version)); operators only (request names and addresses are not public).</footer>
        </body></html>

        """
    }

    private func link(_ d: StatusDocument) -> String {
        "<a class=\"request\" href=\"\(e(Self.pageName(d.request)))\">\(e(d.request))</a>"
    }

    private func age(since timestamp: String?) -> String {
        guard let date = timestamp.flatMap(Timestamp.date) else { return "—" }
        return Self.humanDuration(now.timeIntervalSince(date))
    }

    private func duration(_ d: StatusDocument) -> String {
        guard let start = (d.startedAt ?? d.submittedAt).flatMap(Timestamp.date) else { return "—" }
        let end = d.finishedAt.flatMap(Timestamp.date) ?? now
        return Self.humanDuration(end.timeIntervalSince(start))
    }

    static func humanDuration(_ seconds: Double) -> String {
        let s = Int(max(0, seconds).rounded())
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        if s < 86400 { return "\(s / 3600) h \(s % 3600 / 60) min" }
        return "\(s / 86400) d \(s % 86400 / 3600) h"
    }

    private func e(_ s: String) -> String { Self.escape(s) }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    static let css = """
        body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
        h1{margin:0 0 .2em}h2{font-size:1.1em;margin:1.2em 0 .4em}.meta{color:#666;margin:0}
        table{border-collapse:collapse;background:#fff;min-width:40em}th,td{padding:.3em .6em;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:middle}
        th{background:#f0f0f0;font-weight:600}.summary{display:flex;gap:.8em;flex-wrap:wrap;margin-top:1em}
        .card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em 1em}.card .n{font-size:1.6em;font-weight:700;margin-right:.3em}
        .card.ok .n{color:#2e7d32}.card.bad .n{color:#c62828}.empty{color:#888}
        .steps{display:inline-flex;gap:2px;vertical-align:middle}.seg{display:inline-block;width:28px;height:10px;background:#e0e0e0;border-radius:2px;overflow:hidden}
        .seg span{display:block;height:100%;background:#1565c0}.seg.done span{background:#2e7d32}
        progress.overall{width:10em;vertical-align:middle}.state{padding:0 .4em;border-radius:3px;background:#eee}
        .state.succeeded{background:#c8e6c9}.state.failed,.state.rejected{background:#ffcdd2}.state.cancelled{background:#ffe0b2}.state.running{background:#bbdefb}
        .charts{display:flex;gap:2em;flex-wrap:wrap}figure{margin:0;background:#fff;border:1px solid #ddd;padding:.5em}
        .error{background:#fff3f3;border:1px solid #f5c2c2;padding:.2em 1em}.hint{color:#555}.warning{background:#fff8e1;padding:.3em .6em}
        pre{background:#fff;border:1px solid #ddd;padding:.6em;max-height:30em;overflow:auto;font-size:12px}
        footer{margin-top:2em;color:#888;font-size:.85em}
        """
}
