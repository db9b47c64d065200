import ArgumentParser
import ShredVault

struct ReceiptShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a completed request's receipt, checked against the vault's trust record. Needs no key.",
        discussion: """
            Exits 66 if the request has no receipt (not done yet, or not issued yet) and 65 if the stored \
            receipt does not verify.

            Example:
              shredvault receipt show DSR-2026-0412
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The deletion request's id (delete --request-id).", valueName: "REQUEST_ID"))
    var requestId: String

    func validate() throws { try validateRequestId(requestId) }

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            let (_, verification) = try vault.receipt(requestId: requestId)
            if global.json { return try Output.json(ReceiptCommand.Report(verification)) }
            ReceiptCommand.describe(verification).forEach { print($0) }
        }
    }
}
