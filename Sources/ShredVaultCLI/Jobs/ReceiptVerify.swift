import ArgumentParser
import ShredVault

struct ReceiptVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an exported receipt offline, with only a copy of the vault's trust record. No vault, no key.",
        discussion: """
            Checks that the trust record is signed by the master key it names (and, with --master-key-id, that \
            this is the key you expect: compare it with the id the vault's operator published), that the receipt \
            is signed by that master key or a job credential the record lists, that it names the same vault and \
            master key, and that not one byte of the file was changed. Prints what the receipt states.

            A self-signed trust record proves nothing about who made it: without --master-key-id, compare the \
            printed master key id with one you obtained from the vault's operator another way.

            Exit 0: the receipt is genuine. Exit 65: it does not verify (one line says why). Exit 66: a file is \
            missing. Exit 64: usage error.

            Example:
              shredvault receipt verify DSR-2026-0412.receipt --trust trust \\
                  --master-key-id 5d0c8f4e6b2a41d3a9e07c1b2f3e4d5a
            """)

    @Argument(help: ArgumentHelp("The receipt file (`shredvault receipt export`).", valueName: "FILE"))
    var file: String

    @Option(help: ArgumentHelp("A copy of the vault's trust record file (VAULT/trust).", valueName: "TRUSTFILE"))
    var trust: String

    @Option(help: ArgumentHelp("Require the trust record's master key to have this id (32 hex digits, `shredvault trust show`).",
                               valueName: "HEX"))
    var masterKeyId: String?

    @Flag(help: "Print the result as one JSON object on stdout.")
    var json = false

    func validate() throws {
        if let masterKeyId, masterKeyId.utf8.count != 32 || Hex.decode(masterKeyId) == nil {
            throw ValidationError("--master-key-id '\(masterKeyId)' is not 32 hexadecimal digits")
        }
    }

    func run() throws {
        try reportingErrors {
            do {
                let verification = try DeletionReceipt.verify(receiptFile: file, trustFile: trust, masterKeyId: masterKeyId)
                if json { return try Output.json(ReceiptCommand.Report(verification)) }
                print("receipt valid: \(file)")
                ReceiptCommand.describe(verification).forEach { print($0) }
            } catch let error as VaultError {
                if json, case .notVerified = error { try Output.json(ReceiptCommand.Report(problem: error.description)) }
                throw error
            }
        }
    }
}
