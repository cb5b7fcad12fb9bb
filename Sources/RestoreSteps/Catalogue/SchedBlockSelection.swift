internal import FoundationEssentials
internal import Glibc

/// Chooses a MOUS's scheduling block among its `SCHED_BLOCK_STATUS` rows by `DOMAIN_ENTITY_STATE`.
///
/// A MOUS normally has one SB, but a catalogue may hold several for it (a cancelled SB and its replacement,
/// a superseded copy). The rule, deterministic and never a silent guess:
/// 1. one SB: that SB, whatever its state (as before states were recorded; an SB cancelled after it was
///    observed still holds the EBs);
/// 2. several: the SBs whose state is a *withdrawn* one (``withdrawnStates``: `Canceled`/`Cancelled`,
///    `Deleted`, `Rejected`, `DoNotObserve`, `Superseded`, compared without regard to case) are set aside; an SB
///    without a state counts as live (nothing says it was withdrawn);
/// 3. exactly one live SB left: that SB. None left, or more than one: ``RestoreError`` `inconsistentMetadata`
///    naming every SB with its state.
public enum SchedBlockSelection {
    /// States meaning the SB was withdrawn (lower-cased).
    public static let withdrawnStates: Set<String> = [
        "canceled", "cancelled", "deleted", "rejected", "donotobserve", "superseded",
    ]

    /// Whether `state` is a withdrawn state.
    public static func isWithdrawn(_ state: String?) -> Bool {
        state.map { withdrawnStates.contains($0.lowercased()) } ?? false
    }

    /// Whether `state` is spelled like an ALMA state word (1–64 ASCII letters and digits, starting with a letter).
    public static func isValidState(_ state: String) -> Bool {
        state.wholeMatch(of: #/[A-Za-z][A-Za-z0-9]{0,63}/#) != nil
    }

    /// The chosen SB of `mous` and the others (sorted by uid).
    ///
    /// - Throws: ``RestoreError`` `inconsistentMetadata` when no SB, or several, may be chosen.
    public static func choose(
        _ schedBlocks: [MousRecord.SchedBlock], mous: String
    ) throws(RestoreError)
        -> (chosen: MousRecord.SchedBlock, others: [MousRecord.SchedBlock])
    {
        let sorted = schedBlocks.sorted { $0.uid.rawValue < $1.uid.rawValue }
        if let reason = ambiguity(sorted.map { ($0.uid.rawValue, $0.state) }) {
            throw RestoreError(
                .inconsistentMetadata, "MOUS \(mous): \(reason)",
                hint:
                    "Correct SCHED_BLOCK_STATUS.DOMAIN_ENTITY_STATE in the catalogue (re-import the MOUS with each SB's state), so exactly one SB is not withdrawn."
            )
        }
        guard let chosen = sorted.count == 1 ? sorted.first : sorted.first(where: { !isWithdrawn($0.state) }) else {
            throw RestoreError(.inconsistentMetadata, "MOUS \(mous) has no scheduling block")
        }
        return (chosen, sorted.filter { $0.uid != chosen.uid })
    }

    /// Why no SB can be chosen among `schedBlocks` (uid, state), or nil when one can.
    static func ambiguity(_ schedBlocks: [(uid: String, state: String?)]) -> String? {
        guard schedBlocks.count > 1 else { return nil }
        let live = schedBlocks.filter { !isWithdrawn($0.state) }
        func listed(_ sbs: [(uid: String, state: String?)]) -> String {
            sbs.sorted { $0.uid < $1.uid }.map { "\($0.uid) (\($0.state ?? "no state"))" }.joined(separator: ", ")
        }
        if live.isEmpty {
            return "every scheduling block is withdrawn: \(listed(schedBlocks)); none can be chosen"
        }
        if live.count > 1 {
            return "\(live.count) scheduling blocks could be the MOUS's: \(listed(live)); the agent does not guess"
        }
        return nil
    }
}
