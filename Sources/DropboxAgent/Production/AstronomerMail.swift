import Delivery
import FoundationEssentials
import Glibc
import RestoreSteps

/// The message for the people who asked for the data: what they get, where, how to download it and until when —
/// or, on failure, one sentence they can act on. Never a server path, a configuration key or an operator's hint;
/// the operators get those in their own message (``MailNotifier/body(_:request:facts:)``). Pure.
enum AstronomerMail {
    static func subject(_ s: StatusDocument, _ facts: [String: String]) -> String {
        let mous = s.mous ?? facts["mous"] ?? "?"
        let project = facts["project"].map { " (\($0))" } ?? ""
        switch s.state {
        case .succeeded: return "ALMA data ready: \(mous)\(project)"
        case .cancelled: return "ALMA restore cancelled: \(mous)\(project)"
        default: return "ALMA restore failed: \(mous)\(project)"
        }
    }

    /// Bytes as a short figure with binary units and the exact count.
    static func size(_ bytes: Int64) -> String {
        "\(DeliveryReadme.size(bytes)) (\(bytes) bytes)"
    }

    /// `2026-12-19T08:21:25Z` as `2026-12-19 08:21 UTC`.
    static func readableTime(_ iso: String) -> String {
        guard let time = UTCTime(parsing: iso) else { return iso }
        let c = CivilTime(millisecondsSince1970: time.millisecondsSince1970)
        return CivilTime.digits(c.year, 4) + "-" + CivilTime.digits(c.month, 2) + "-" + CivilTime.digits(c.day, 2) + " "
            + CivilTime.digits(c.hour, 2) + ":" + CivilTime.digits(c.minute, 2) + " UTC"
    }

    static func body(_ s: StatusDocument, request: RestoreRequest, facts: [String: String]) -> String {
        let mous = s.mous ?? facts["mous"] ?? "?"
        var lines: [String] = []
        switch s.state {
        case .succeeded: lines.append("The calibrated ALMA data you asked for are ready to download.")
        case .cancelled: lines.append("Your request for the ALMA data of \(mous) was cancelled; nothing was delivered.")
        default: lines.append("Your request for the ALMA data of \(mous) could not be completed.")
        }
        lines.append("")
        lines.append("MOUS:          \(mous)")
        if let p = facts["project"] { lines.append("Project:       \(p)") }
        if let r = s.result {
            let delivered = r.products ?? r.measurementSets
            lines.append("Delivered:     \(delivered.joined(separator: ",\n               "))")
            lines.append("Total size:    \(size(r.sizeBytes))")
            lines.append("Download:      \(r.url ?? "")")
            if let command = r.downloadCommand {
                lines.append("")
                lines.append("All of it with one command:")
                lines.append("  \(command)")
            }
            if let plots = r.plots, !plots.isEmpty, let url = r.url {
                lines.append("")
                lines.append("Quick-look plots (look at these first):")
                lines += plots.map { "  \(url)\($0)" }
            }
            lines.append("")
            if let expires = r.expiresAt {
                lines.append(
                    "Available until \(readableTime(expires)); then the data are removed. Download them before then.")
            } else {
                lines.append("The data stay available until the operators remove them.")
            }
        }
        if let casa = s.casa {
            lines.append("")
            if let made = casa.manifestVersion {
                lines.append("CASA:          calibration made with CASA \(made), restored with CASA \(casa.version)")
                if made != casa.version {
                    lines.append(
                        "               (different versions: results may differ slightly from the pipeline's own)")
                }
            } else {
                lines.append("CASA:          restored with CASA \(casa.version)")
            }
        }
        if s.state == .failed || s.state == .rejected {
            lines.append("")
            lines.append(explanation(code: s.error?.code))
            lines.append("The operators have been told.")
        }
        lines.append("")
        lines.append("Request id:    \(s.requestId ?? request.requestId ?? s.request)")
        if s.state == .succeeded {
            lines.append("")
            lines.append(
                "The README.txt in the delivery lists every file with its checksum and how to open the data in CASA.")
        }
        lines.append("")
        lines.append("-- ")
        lines.append("This message was sent automatically. Please quote the request id in any question about it.")
        return lines.joined(separator: "\n")
    }

    /// One sentence a principal investigator can act on, by error code.
    static func explanation(code: String?) -> String {
        switch code ?? "" {
        case "unknownMous", "archiveUnknownMous", "invalidUid", "invalidRequest":
            return
                "The archive does not know this MOUS: check its uid (it looks like uid://A001/X1284/X265f) and submit the request again."
        case "proprietary", "archiveAccessDenied":
            return
                "The data of this MOUS are still proprietary and may not be restored by this service for you: submit again after their release date, or ask the ALMA Helpdesk."
        case "manuallyCalibrated", "noCalibrationProducts", "noScienceProducts", "noManifest", "noPassExecBlock":
            return
                "This MOUS cannot be restored automatically (it was calibrated manually, or has no pipeline calibration): download its products from the ALMA archive, or ask the ALMA Helpdesk for calibrated data."
        case "packageNotFound", "packageNotAllowed", "packageWrongMous", "packageInconsistent", "packageFileTruncated",
            "missingAsdmFile",
            "manifestFileMissing":
            return
                "The download package you named is incomplete or belongs to another MOUS: download the MOUS's auxiliary and raw-data tars from the ALMA archive again, put them in one folder and submit the request again."
        case "projectMismatch", "fileSetMismatch":
            return
                "The project or execution blocks in your request do not match this MOUS: check them and submit the request again."
        case "cancelled":
            return "The request was cancelled; submit it again if you still want the data."
        default:
            return
                "The restore stopped because of a problem on our side; nothing is needed from you now. If you have not heard from us within two working days, write to us quoting the request id below."
        }
    }
}
