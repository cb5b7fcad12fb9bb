/// A validated request, whatever form it was dropped in: what to restore and how to deliver it.
public struct RestoreRequest: Sendable, Codable, Hashable {
    /// The form the request arrived in.
    public enum Form: String, Sendable, Codable {
        /// `dropbox-agent/request/v1`.
        case native
        /// The archive's `runAlmaBasicRestoreWorkflow` event, verbatim.
        case workflowEvent
    }

    /// How the CASA installation was chosen by the request, if it chose one.
    public enum CASAChoice: Sendable, Codable, Hashable {
        /// A configured installation's name (native `casa` field).
        case name(String)
        /// A configured installation's home directory (event `metadata.casaHome`).
        case home(String)
    }

    /// How the measurement sets are delivered.
    public enum DeliveryFormat: String, Sendable, Codable, CaseIterable {
        /// A directory of measurement sets (default).
        case ms
        /// One tar file streamed with libarchive.
        case tar
        /// One gzip-compressed tar file.
        case tgz
    }

    /// What a delivery holds (request `delivery.content`; several may be combined).
    public enum DeliveryContent: String, Sendable, Codable, CaseIterable, Comparable {
        /// The full calibrated measurement sets (default).
        case calibrated
        /// Science spectral windows, all fields: `<eb>.ms.split.cal` (scriptForPI's split).
        case science
        /// Science spectral windows, science targets only: `<eb>.ms.split.cal.source`.
        case targets
        /// Science targets with the continuum subtracted (`uvcontsub` with the pipeline's `cont.dat`): `<eb>_targets_line.ms`.
        case contsub

        public static func < (a: Self, b: Self) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
    }

    /// Averaging of the derived products (request `delivery.average`, mstransform).
    public struct DeliveryAverage: Sendable, Codable, Hashable {
        /// Time bin, e.g. `30s`.
        public var time: String?
        /// Channels per output channel (at least 2).
        public var channels: Int?
        public init(time: String? = nil, channels: Int? = nil) {
            self.time = time
            self.channels = channels
        }
    }

    /// The form of the request.
    public var form: Form
    /// The MOUS (OUS status uid), e.g. `uid://A001/X1284/X265f`.
    public var mous: String
    /// The client's id for the request (native `requestId`, event `cliCorrId`).
    public var requestId: String?
    /// Recipients of the completion email.
    public var email: [String]
    /// The CASA installation the request asked for.
    public var casa: CASAChoice?
    /// The delivery format.
    public var deliveryFormat: DeliveryFormat
    /// Event only: EB uids (`fileSetIds`) to cross-check against the catalogue.
    public var fileSetIds: [String]?
    /// Event only: the project code (`projectCodeOrDataType`) to cross-check against the catalogue.
    public var projectCode: String?
    /// Where the data come from, when the request says (native `source`); nil: the configured default.
    public var source: RestoreSource?
    /// What the delivery holds, sorted; nil: `[.calibrated]`.
    public var deliveryContent: [DeliveryContent]?
    /// Averaging of derived products; nil: none.
    public var deliveryAverage: DeliveryAverage?

    /// The delivery's content, `[.calibrated]` unless the request says.
    public var content: [DeliveryContent] { deliveryContent ?? [.calibrated] }

    public init(
        form: Form = .native, mous: String, requestId: String? = nil, email: [String] = [],
        casa: CASAChoice? = nil, deliveryFormat: DeliveryFormat = .ms, fileSetIds: [String]? = nil,
        projectCode: String? = nil, source: RestoreSource? = nil
    ) {
        self.form = form
        self.mous = mous
        self.requestId = requestId
        self.email = email
        self.casa = casa
        self.deliveryFormat = deliveryFormat
        self.fileSetIds = fileSetIds
        self.projectCode = projectCode
        self.source = source
    }
}
