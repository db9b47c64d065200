import ArgumentParser
import ShredVault

struct HoldList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List active legal holds (--all: released ones too). Needs no key.",
        discussion: """
            Example:
              shredvault hold list --all --json
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Include released holds.")
    var all = false

    @Option(help: ArgumentHelp("Only this user's holds.", valueName: "ID"))
    var user: String?

    func validate() throws {
        if let user { try validateUser(user) }
    }

    /// One hold as printed with --json (times as ISO-8601).
    struct Hold: Encodable {
        var caseId: String
        var userId: String
        var reason: String
        var placedAt: String
        var releasedAt: String?
    }

    struct Report: Encodable {
        var holds: [Hold]
    }

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            let holds = try vault.holds(includeReleased: all).filter { user == nil || $0.userId == user }.map {
                Hold(caseId: $0.caseId, userId: $0.userId, reason: $0.reason, placedAt: Timestamp.format($0.placedAt),
                     releasedAt: $0.releasedAt.map(Timestamp.format))
            }
            if global.json { return try Output.json(Report(holds: holds)) }
            if holds.isEmpty {
                print(all ? "no legal holds" : "no active legal holds")
                return
            }
            let caseWidth = max(4, holds.map(\.caseId.count).max()!), userWidth = max(4, holds.map(\.userId.count).max()!)
            func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
            print("\(pad("CASE", caseWidth))  \(pad("USER", userWidth))  PLACED                \(all ? "RELEASED              " : "")REASON")
            for h in holds {
                let released = all ? pad(h.releasedAt ?? "active", 20) + "  " : ""
                print("\(pad(h.caseId, caseWidth))  \(pad(h.userId, userWidth))  \(h.placedAt)  \(released)\(h.reason.split(whereSeparator: \.isNewline).joined(separator: " "))")
            }
        }
    }
}
