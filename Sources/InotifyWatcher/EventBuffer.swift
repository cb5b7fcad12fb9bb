/// A FIFO of undelivered events that holds each candidate name at most once.
///
/// A second candidate for a name that is still waiting adds nothing: the consumer has not looked at the name yet,
/// and will see its latest state when it does.
struct EventBuffer {
    private var events: [WatchEvent] = []
    private var head = 0
    private var waitingNames: Set<String> = []

    /// Events waiting for the consumer.
    var count: Int { events.count - head }
    var isEmpty: Bool { count == 0 }

    /// Appends `event`, unless it is a candidate whose name is already waiting.
    mutating func append(_ event: WatchEvent) {
        if case .candidate(let name, _) = event {
            guard waitingNames.insert(name).inserted else { return }
        }
        events.append(event)
    }

    /// Removes and returns the oldest event.
    mutating func popFirst() -> WatchEvent? {
        guard head < events.count else { return nil }
        let event = events[head]
        head += 1
        if head == events.count {
            events.removeAll(keepingCapacity: events.count <= 4096)
            head = 0
            // Emptied: the set of waiting names gives back what a burst made it grow to.
            if waitingNames.capacity > 4096 { waitingNames = [] }
        } else if head >= 4096 && head * 2 >= events.count {
            events.removeFirst(head)
            head = 0
        }
        if case .candidate(let name, _) = event { waitingNames.remove(name) }
        return event
    }

    /// Drops everything.
    mutating func removeAll() {
        events = []
        head = 0
        waitingNames = []
    }
}
