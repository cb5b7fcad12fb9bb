/// The six steps of a restore, in the order the contract fixes.
public enum StepName: String, Sendable, Codable, CaseIterable, Comparable {
    /// 1: the working tree (`rawdata/`, `working/`, `products/`, logs) and `metadata.json`.
    case prepare
    /// 2: the raw ASDMs of the QA0-Pass execution blocks.
    case rawdata
    /// 3: calibration and script products, the manifest staged where CASA expects it.
    case calibration
    /// 4: the restore SciPipeRequest (PPR).
    case ppr
    /// 5: CASA itself.
    case casa
    /// 6: success checks, measurement sets to the download area, notification.
    case deliver

    /// The step's number, 1 to 6, as shown in the status file.
    public var number: Int { StepName.allCases.firstIndex(of: self)! + 1 }

    /// The step with the given number, or nil outside 1…6.
    public init?(number: Int) {
        guard (1...StepName.allCases.count).contains(number) else { return nil }
        self = StepName.allCases[number - 1]
    }

    public static func < (lhs: StepName, rhs: StepName) -> Bool { lhs.number < rhs.number }
}
