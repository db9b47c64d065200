import ArgumentParser
import Foundation
import ShredVault

struct ReceiptExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a completed request's signed receipt file, to hand to the user. Needs no key.",
        discussion: """
            The file is one line of JSON, {"receipt": TEXT, "signature": HEX}: TEXT the signed receipt, HEX \
            its signature. Hand it to the user with a copy of the vault's trust record (VAULT/trust); \
            `shredvault receipt verify FILE --trust TRUSTFILE` checks it anywhere, without the vault. The \
            receipt is checked before it is written; --out never replaces an existing file (exit 73).

            Example:
              shredvault receipt export DSR-2026-0412 --out DSR-2026-0412.receipt
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The deletion request's id (delete --request-id).", valueName: "REQUEST_ID"))
    var requestId: String

    @Option(help: ArgumentHelp("Write the receipt to this new file, outside the vault (default: stdout).", valueName: "FILE"))
    var out: String?

    func validate() throws {
        try validateRequestId(requestId)
        if let out, out.isEmpty { throw ValidationError("--out needs a file name") }
    }

    struct Report: Encodable {
        var requestId: String
        var file: String
    }

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            guard let out else {
                let (record, _) = try vault.receipt(requestId: requestId)
                guard let file = record.file else { throw VaultError.notVerified(path: requestId, reason: "its stored signature is malformed") }
                FileHandle.standardOutput.write(Data(file.encoded))
                return
            }
            _ = try vault.exportReceipt(requestId: requestId, to: out)
            if global.json { return try Output.json(Report(requestId: requestId, file: out)) }
            print("wrote the receipt of deletion request \(requestId) to \(out)")
            Output.note("the user verifies it with `shredvault receipt verify \(out) --trust TRUSTFILE`, TRUSTFILE a copy of \(vault.root)/trust")
        }
    }
}
