import ArgumentParser
import ShredVault

struct ReceiptList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the vault's deletion receipts, each checked against the trust record. Needs no key.",
        discussion: """
            With --json prints one JSON object per line: requestId, userId, received, deadline, completed, \
            onTime, destroyedKeys, valid (and problem when not valid). Exits 65 if any receipt does not verify.

            Example:
              shredvault receipt list --user u0100037
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only this user's receipts.", valueName: "ID"))
    var user: String?

    func validate() throws {
        if let user { try validateUser(user) }
    }

    struct Line: Encodable {
        var requestId: String
        var userId: String
        var received: String?
        var deadline: String?
        var completed: String?
        var onTime: Bool?
        var destroyedKeys: [String]?
        var valid: Bool
        var problem: String?
    }

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            var invalid = 0
            let records = try vault.receipts().filter { user == nil || $0.userId == user }
            if !global.json {
                if records.isEmpty { return print("no deletion receipts") }
                print("REQUEST                           USER              COMPLETED             DEADLINE    ON TIME  KEYS")
            }
            for record in records {
                var problem: String?
                do { _ = try vault.verify(record) } catch let e as VaultError {
                    guard case .notVerified = e else { throw e }
                    problem = e.description
                    invalid += 1
                }
                let r = DeletionReceipt(text: record.text)
                if global.json {
                    try Output.json(Line(requestId: record.requestId, userId: record.userId, received: r?.received, deadline: r?.deadline,
                                         completed: r?.completed, onTime: r?.onTime, destroyedKeys: r?.destroyedKeys, valid: problem == nil,
                                         problem: problem))
                    continue
                }
                func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
                let keys = r.map { $0.alreadyDeletedBy.map { "already deleted by \($0)" } ?? String($0.destroyedKeys.count) } ?? "?"
                print("\(pad(record.requestId, 32))  \(pad(record.userId, 16))  \(pad(r?.completed ?? "?", 20))  \(pad(r?.deadline ?? "?", 10))  "
                      + "\(pad(r.map { $0.onTime ? "yes" : "LATE" } ?? "?", 7))  \(keys)" + (problem == nil ? "" : "  DOES NOT VERIFY"))
            }
            if invalid > 0 {
                throw VaultError.notVerified(path: vault.root, reason: "\(invalid) of its receipts fail verification (tampered catalog?); run `shredvault check`")
            }
        }
    }
}
