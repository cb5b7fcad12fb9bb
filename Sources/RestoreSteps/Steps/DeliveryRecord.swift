internal import Synchronization

/// What step 6 delivered (`logs/delivery.json`), for the status file and the notification.
public struct DeliveryRecord: Codable, Sendable, Equatable {
    public var deliveryPath: String
    public var url: String
    public var measurementSets: [String]
    public var sizeBytes: Int64
    public var files: Int
    /// The delivery's random directory name in the download area.
    public var name: String?
    /// When it was published and when it is removed (ISO 8601, UTC); no `expiresAt`: kept for ever.
    public var deliveredAt: String?
    public var expiresAt: String?
    /// One line that downloads all of it (nil without `delivery.baseURL`).
    public var downloadCommand: String?
    /// The delivered products (top-level names: measurement sets, derived products, or the archive).
    public var products: [String]?
    /// Quick-look plots, relative to the delivery.
    public var plots: [String]?
}

/// Where step 6 leaves what it delivered for the one who runs the pipeline: the result is passed on in memory, not
/// read back from `logs/delivery.json` (that file is the step's own checkpoint, read by the step when it runs again).
public final class DeliveredRecord: Sendable {
    private let value = Mutex<DeliveryRecord?>(nil)
    public init() {}

    /// What step 6 delivered in this run (nil: it did not run, or did not finish).
    public var record: DeliveryRecord? { value.withLock { $0 } }

    func set(_ record: DeliveryRecord) { value.withLock { $0 = record } }
}
