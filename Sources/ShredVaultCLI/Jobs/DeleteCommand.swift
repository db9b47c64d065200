import ArgumentParser
import ShredVault

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Process a user's deletion request: shred the user now, unless a legal hold blocks it.",
        discussion: """
            Records the request first (with its deadline: 5 business days after --received, skipping weekends \
            and the vault's holidays), then destroys the user's private key, every sealed data key and bundle \
            file of the user, and writes a tombstone so the user is never archived again. Needs no key.

            Under an active legal hold the request is recorded as blocked, the command names the blocking cases \
            and exits 10; it runs automatically when the last hold on the user is released. Repeating a request \
            id is safe: a deleted user reports "already-deleted" (exit 0).

            A user the vault does not know (never archived) is refused (exit 66), in case the id is a typo. If the \
            user is simply not archived yet, pass --not-archived: the request is recorded with its deadline and a \
            tombstone is written, so the nightly job never archives the user ("recorded-before-archive"); remove \
            the user's data from the export as well.

            Every completed request gets a signed receipt (`shredvault receipt export ID`) to hand to the user.

            Example:
              shredvault delete u0100037 --request-id DSR-2026-0412 \\
                  --received 2026-11-27T09:30:00Z
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The user to delete.", valueName: "USER"))
    var user: String

    @Option(help: ArgumentHelp("Your ticket id for the request (1-200 characters, one line); recorded in the ledger.", valueName: "ID"))
    var requestId: String

    @Option(help: ArgumentHelp("When the request was received, ISO-8601 (default: now); the deadline counts from it.", valueName: "TIME"))
    var received: String?

    @Flag(help: "Report what would happen; record and change nothing.")
    var dryRun = false

    @Flag(help: "The user may not be archived yet: if the vault does not know the user, record the request and a tombstone so it never is.")
    var notArchived = false

    func validate() throws {
        guard UserID(user) != nil else {
            throw ValidationError("'\(user)' is not a valid user id: use 1-128 characters of A-Z a-z 0-9 . _ - not starting with . or -")
        }
        if requestId.isEmpty || requestId.utf8.count > 200 || requestId.contains(where: \.isNewline) {
            throw ValidationError("--request-id must be 1-200 characters on one line")
        }
        if let received, Timestamp.parse(received) == nil {
            throw ValidationError("--received '\(received)' is not an ISO-8601 time such as 2026-11-27T09:30:00Z or 2026-11-27")
        }
        if let received, let t = Timestamp.parse(received), !Timestamp.isRepresentable(t) {
            throw ValidationError("--received '\(received)' is outside 1970-01-01 to 9999-12-31, the days a vault can hold")
        }
    }

    func run() throws {
        let job = JobRun("delete", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault(dryRun: dryRun)
            let report = try vault.delete(user: UserID(user)!, requestId: requestId, received: received.flatMap(Timestamp.parse),
                                          now: global.now, dryRun: dryRun, notArchived: notArchived)
            if global.json {
                try Output.json(report)
            } else {
                if let line = Output.sweepLine(report.sweep) { print(line) }
                defer {
                    if report.receipt { Output.note("signed receipt for the user: `shredvault receipt export \(report.requestId) --out FILE`") }
                }
                switch report.outcome {
                case .shredded:
                    print("shredded user \(report.user) (request \(report.requestId), received \(report.receivedAt), due \(report.deadline)): "
                          + "destroyed \(Output.plural(report.destroyedKeys, "key")), removed \(Output.plural(report.removedBundles, "bundle")); tombstone written")
                case .alreadyDeleted:
                    print(dryRun ? "dry run: user \(report.user) was already deleted; nothing to do"
                          : "user \(report.user) was already deleted; request \(report.requestId) recorded as done")
                case .wouldShred:
                    print("dry run: would shred user \(report.user) now (request \(report.requestId), due \(report.deadline)); nothing changed")
                case .recordedBeforeArchive:
                    print("recorded request \(report.requestId) for user \(report.user), not archived yet (received \(report.receivedAt), due \(report.deadline)): "
                          + "tombstone written, the user is never archived; remove its data from the export")
                case .wouldRecordBeforeArchive:
                    print("dry run: user \(report.user) is not archived; would record request \(report.requestId) (due \(report.deadline)) and a tombstone; nothing changed")
                case .blocked:
                    let cases = report.blockedBy.joined(separator: ", ")
                    print(dryRun
                          ? "dry run: request \(report.requestId) would be blocked by legal hold \(cases); nothing changed"
                          : "blocked: request \(report.requestId) for user \(report.user) (due \(report.deadline)) is recorded and waits for legal hold \(cases)")
                }
            }
            if report.outcome == .blocked {
                printError(dryRun
                    ? "user \(report.user) is under legal hold \(report.blockedBy.joined(separator: ", ")); a deletion request would be recorded as blocked"
                    : VaultError.blockedByHold(user: report.user, cases: report.blockedBy).description)
                throw ExitCode(ExitCodes.blockedByHold)
            }
            try job.succeeded(vault, record: !dryRun, [
                "dry_run": .stringConvertible(dryRun), "request_id": .string(report.requestId), "outcome_kind": .string("\(report.outcome)"),
                "destroyed_keys": .stringConvertible(report.destroyedKeys), "removed_bundles": .stringConvertible(report.removedBundles),
            ])
        } }
    }
}
