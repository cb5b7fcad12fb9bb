import Testing

/// All watcher suites, run one test at a time: the overflow test lowers a kernel limit for a moment and the
/// descriptor tests count this process's descriptors.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct InotifyWatcherTests {}
