import ArgumentParser
import ShredVault

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List live bundles in expiry order. Needs no key.",
        discussion: """
            Streams from the catalog, so it works on any size of vault. With --json it prints one JSON object \
            per line (JSON Lines): bundleId, user, archivedAt, expiryDay, originalExpiryDay (before any hold), \
            held, size, files, location.

            Example:
              shredvault list --expiring-before 2027-03-01
              shredvault list --user u0100037 --json
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only bundles whose expiry day is before this day.", valueName: "YYYY-MM-DD"))
    var expiringBefore: String?

    @Option(help: ArgumentHelp("Only this user's bundles.", valueName: "ID"))
    var user: String?

    func validate() throws {
        if let expiringBefore, CivilDay(iso: expiringBefore) == nil {
            throw ValidationError("--expiring-before '\(expiringBefore)' is not a date of the form YYYY-MM-DD")
        }
        if let user { try validateUser(user) }
    }

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            var count = 0, bytes: Int64 = 0
            if !global.json { print("EXPIRY      USER              BUNDLE                            HELD  FILES        SIZE") }
            try vault.listBundles(expiringBefore: expiringBefore.flatMap(CivilDay.init(iso:)), user: user.flatMap(UserID.init)) { b in
                count += 1
                bytes += b.size
                if global.json { return try Output.json(b) }
                func pad(_ s: String, _ w: Int, right: Bool = false) -> String {
                    let fill = String(repeating: " ", count: max(0, w - s.count))
                    return right ? fill + s : s + fill
                }
                print("\(b.expiryDay)  \(pad(b.user, 16))  \(b.bundleId)  \(b.held ? "yes " : "no  ")  \(pad(String(b.files), 5, right: true))  \(pad(Output.bytes(b.size), 10, right: true))")
            }
            if !global.json { print("\(Output.plural(count, "bundle")), \(Output.bytes(bytes))") }
        }
    }
}
