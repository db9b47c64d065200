import ArgumentParser
import ShredVault

struct ReceiptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receipt",
        abstract: "Signed deletion receipts: proof for a user that their deletion request was carried out.",
        discussion: """
            Every completed deletion request gets a receipt, signed by the vault's job credential in the \
            transaction that completes it: request id, user id, when it was received, its deadline, when it \
            completed and whether that was on time, the user keys destroyed for it, the destruction-root \
            generation left after the destruction and the audit record of the completion. It holds no personal \
            data beyond the user id.

            A data-protection officer exports the receipt and hands it to the user together with the vault's \
            trust record (VAULT/trust) and the master key id (`shredvault trust show`), published where the user \
            can check it. `receipt verify` needs nothing else: no vault, no key. The receipt proves that this \
            vault signed, at that time, that the user's key was destroyed under that root generation; it cannot \
            prove that nobody copied the data before (vault-format.md §6.3).

            Example:
              shredvault receipt export DSR-2026-0412 --out DSR-2026-0412.receipt
              shredvault receipt verify DSR-2026-0412.receipt --trust trust \\
                  --master-key-id 5d0c8f4e6b2a41d3a9e07c1b2f3e4d5a
            """,
        subcommands: [ReceiptShow.self, ReceiptExport.self, ReceiptVerify.self, ReceiptList.self]
    )

    /// The human summary of a verified receipt (show, verify).
    static func describe(_ v: ReceiptVerification) -> [String] {
        let r = v.receipt
        var lines = ["deletion request \(r.requestId) of user \(r.userId): completed \(r.completed), \(r.onTime ? "on time" : "LATE")"]
        lines.append("  received         \(r.received)")
        lines.append("  deadline         \(r.deadline)")
        lines.append("  completed        \(r.completed)" + (r.issued == r.completed ? "" : " (receipt issued \(r.issued))"))
        if let earlier = r.alreadyDeletedBy {
            lines.append("  keys destroyed   none: the user had already been deleted by request \(earlier)")
        } else {
            lines.append("  keys destroyed   " + (r.destroyedKeys.isEmpty ? "none recorded" : r.destroyedKeys.map { "user key \($0)" }.joined(separator: ", ")))
        }
        lines.append("  root generation  " + (r.rootGeneration.map { "\($0) (every earlier generation destroyed)" } ?? "none (vault without destruction root)"))
        lines.append("  audit record     #\(r.auditHead.seq) \(r.auditHead.hash)")
        lines.append("  signed by        \(v.signerRole == "master" ? "the master key" : "job credential") \(v.signerKeyId) of vault \(r.vaultId), "
                     + "master key \(v.masterKeyId) (trust record serial \(v.trustSerial))")
        return lines
    }

    /// What `show --json` and `verify --json` print.
    struct Report: Encodable {
        var valid: Bool
        var receipt: DeletionReceipt?
        var signerKeyId: String?
        var signerRole: String?
        var trustSerial: Int64?
        var masterKeyId: String?
        var problem: String?

        init(_ v: ReceiptVerification) {
            valid = true
            receipt = v.receipt
            signerKeyId = v.signerKeyId
            signerRole = v.signerRole
            trustSerial = v.trustSerial
            masterKeyId = v.masterKeyId
        }

        init(problem: String) {
            valid = false
            self.problem = problem
        }
    }
}

/// Checks a request id as `delete --request-id` does.
func validateRequestId(_ id: String) throws {
    if id.isEmpty || id.utf8.count > 200 || id.contains(where: \.isNewline) {
        throw ValidationError("the request id must be 1-200 characters on one line")
    }
}
