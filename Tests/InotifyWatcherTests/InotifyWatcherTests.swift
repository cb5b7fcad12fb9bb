import Testing

/// All watcher suites, run one test at a time: the overflow test writes some 18 000 files to overflow its inotify
/// queue, and the descriptor tests count this process's descriptors.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct InotifyWatcherTests {}
