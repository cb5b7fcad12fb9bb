extension SpoolAgent {
    /// `STATUS=` for systemd, read on the agent itself (so it also proves the agent answers).
    func systemdStatus() -> String {
        SystemdNotifier.statusLine(queued: queuedCount, running: runningCount, waiting: pendingCount)
    }
}
