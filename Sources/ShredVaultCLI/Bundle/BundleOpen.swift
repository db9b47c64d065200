import ArgumentParser
import ShredVault

struct BundleOpen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open",
        abstract: "Decrypt, verify and extract a bundle into a new directory.",
        discussion: """
            Every chunk is authenticated, the zstd checksum and every file's SHA-256 are checked against the
            manifest, and unsafe entries (absolute paths, '..', links, devices) are refused. Files are written
            to a private temporary directory beside DIR that becomes DIR only after everything verified; on
            any failure nothing is left behind. Use --verify-only to check a bundle without extracting it.
            """)

    @Argument(help: "Bundle file to open.")
    var bundle: String

    @Option(help: ArgumentHelp("File holding the 32-byte data key as 64 hex characters (mode 0600).", valueName: "KEY"))
    var keyFile: String

    @Option(name: .customLong("to"), help: ArgumentHelp("Directory to create; it must not exist.", valueName: "DIR"))
    var target: String?

    @Flag(help: "Decrypt and verify everything, write nothing.")
    var verifyOnly = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if target == nil && !verifyOnly { throw ValidationError("give --to DIR, or --verify-only to check without extracting") }
        if target != nil && verifyOnly { throw ValidationError("--to and --verify-only exclude each other") }
    }

    func run() throws {
        try reportingErrors {
            let key = try DataKeyFile.read(keyFile)
            let result = if let target {
                try BundleReader.extract(path: bundle, dataKey: key, to: target)
            } else {
                try BundleReader.verify(path: bundle, dataKey: key)
            }
            let files = result.manifest.fileCount, bytes = result.manifest.totalFileBytes
            if json {
                var out: [String: Any] = ["bundleId": result.header.bundleIdHex, "userId": result.header.userId.rawValue,
                                          "files": files, "bytes": bytes, "verified": true]
                if let target { out["target"] = target }
                printJSON(out)
            } else if let target {
                print("opened \(bundle): \(files) files (\(bytes) bytes) of \(result.header.userId) verified and written to \(target)")
            } else {
                print("verified \(bundle): \(files) files (\(bytes) bytes) of \(result.header.userId)")
            }
        }
    }
}
