import RestoreSteps

/// The codes the agent itself writes into `error.code` (intake, claims, cancellations, its own disk), next to
/// those of the restore steps (RestoreSteps) and of Delivery. Every one is listed in ``ErrorCodeRegistry``.
extension RestoreError.Code {
    // MARK: Intake: the request file itself

    /// The request is not JSON (a syntax error that is not just a missing end).
    static let invalidJSON: Self = "invalidJSON"
    /// The request ends in the middle of a JSON document and stayed so for `spool.incompleteTimeoutSeconds`.
    static let incompleteRequest: Self = "incompleteRequest"
    /// The request is JSON but breaks the contract (every problem with its JSON path in the message).
    static let invalidRequest: Self = "invalidRequest"
    /// A `*.json` whose NAME breaks the naming rule (or is not UTF-8): moved aside, no status file.
    static let invalidName: Self = "invalidName"
    /// The request is a symbolic link (links are never followed).
    static let symlink: Self = "symlink"
    /// The request is a FIFO, socket, device or directory, not a regular file.
    static let notRegularFile: Self = "notRegularFile"
    /// The request has more than one hard link (for longer than a publishing writer needs).
    static let hardLink: Self = "hardLink"
    /// The request's owner is not in `spool.allowedOwners`.
    static let ownerNotAllowed: Self = "ownerNotAllowed"
    /// The request is larger than `spool.maxRequestBytes`.
    static let tooLarge: Self = "tooLarge"
    /// The agent may not open or read the request file.
    static let unreadable: Self = "unreadable"

    // MARK: Cancellation and attempts

    /// A `NAME.cancel` for a request that does not exist or has already ended (kept with its reason).
    static let nothingToCancel: Self = "nothingToCancel"
    /// The request was started `agent.maxAttempts` times without finishing (its agents stopped or crashed).
    static let tooManyAttempts: Self = "tooManyAttempts"

    // MARK: The agent's own files

    /// A filesystem the agent writes to is full (`ENOSPC`); the message names it.
    static let noSpaceLeft: Self = "noSpaceLeft"
}
