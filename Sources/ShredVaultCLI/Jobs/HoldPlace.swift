import ArgumentParser
import ShredVault

struct HoldPlace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "place",
        abstract: "Put a user's bundles under a legal hold for a case. Needs the restore key.",
        discussion: """
            The user's bundles survive their expiry day and any deletion request until the hold is released. \
            Placing the same case twice is harmless. A user may be held under several cases at once.

            Example:
              shredvault hold place u0100037 --case HR-2026-14 \\
                  --reason "wrongful dismissal claim" \\
                  --master-key-file /root/shredvault-restore.key
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The user(s) to hold.", valueName: "USER"))
    var users: [String] = []

    @Flag(help: "Hold every user that has a live bundle (e.g. for a litigation hold on the whole archive).")
    var all = false

    @Option(name: .customLong("case"), help: ArgumentHelp("Case id: 1-128 characters of letters, digits and - _ . : /", valueName: "ID"))
    var caseId: String

    @Option(help: ArgumentHelp("Why the data must be kept (recorded with the hold; at most 2000 bytes).", valueName: "TEXT"))
    var reason: String

    func validate() throws {
        for user in users { try validateUser(user) }
        if users.isEmpty && !all { throw ValidationError("name at least one USER, or pass --all") }
        if !users.isEmpty && all { throw ValidationError("give USER arguments or --all, not both") }
        try validateCase(caseId)
        if reason.allSatisfy(\.isWhitespace) || reason.utf8.count > 2000 {
            throw ValidationError("--reason must be non-empty text (at most 2000 bytes)")
        }
    }

    func run() throws {
        let job = JobRun("hold-place", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault()
            job.vault = vault
            let key = try vault.restoreKey(path: global.restoreKeyPath)
            if all || users.count > 1 {
                let targets = all ? try vault.liveUserIds() : users.compactMap(UserID.init)
                let reports = try vault.placeHold(users: targets, caseId: caseId, reason: reason, restoreKey: key, now: global.now)
                if global.json { return try Output.json(reports) }
                if let line = Output.sweepLine(reports.first?.sweep) { print(line) }
                let resealed = reports.reduce(0) { $0 + $1.resealedBundles }
                print("placed hold \(caseId) on \(Output.plural(reports.count, "user")): resealed \(Output.plural(resealed, "bundle")) to the case's hold key")
                return
            }
            let report = try vault.placeHold(user: UserID(users[0])!, caseId: caseId, reason: reason, restoreKey: key, now: global.now)
            if global.json { return try Output.json(report) }
            if let line = Output.sweepLine(report.sweep) { print(line) }
            if report.action == "already-placed" {
                print("user \(report.user) is already held under case \(report.caseId); nothing changed")
            } else if report.resealedBundles == 0 && report.remainingHolds.count > 1 {
                print("placed hold \(report.caseId) on user \(report.user): its bundles were already held; they stay held until every case is released")
            } else {
                print("placed hold \(report.caseId) on user \(report.user): resealed \(Output.plural(report.resealedBundles, "bundle")) to the case's hold key; "
                      + "the user's data survives its expiry day and deletion requests until the hold is released")
            }
            if report.remainingHolds.count > 1 { print("active holds on \(report.user): \(report.remainingHolds.joined(separator: ", "))") }
        } }
    }
}

func validateUser(_ user: String) throws {
    guard UserID(user) != nil else {
        throw ValidationError("'\(user)' is not a valid user id: use 1-128 characters of A-Z a-z 0-9 . _ - not starting with . or -")
    }
}

func validateCase(_ caseId: String) throws {
    guard Vault.validCaseId(caseId) else { throw ValidationError("--case '\(caseId)' must be 1-128 characters of letters, digits and - _ . : /") }
}
