import ArgumentParser
import Foundation
import ShredVault

struct BundleSeal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal",
        abstract: "Seal a directory into a new bundle file.",
        discussion: """
            Streams DIR into a pax tar, compresses it with zstd (level 3, checksummed) and encrypts it with
            Cobblestone-256 under the data key. Only regular files and directories are accepted; symbolic
            links, devices and FIFOs are refused. The bundle is written under a temporary name, fsynced and
            renamed into place; OUT must not exist.
            """)

    @Option(name: .customLong("from"), help: ArgumentHelp("Directory to seal (the user's files).", valueName: "DIR"))
    var source: String

    @Option(name: .customLong("user"), help: ArgumentHelp("User id recorded in the header ([A-Za-z0-9._-], 1-128 bytes).", valueName: "USER_ID"))
    var user: String

    @Option(help: ArgumentHelp("Expiry day recorded in the header.", valueName: "YYYY-MM-DD"))
    var expiry: String

    @Option(help: ArgumentHelp("File holding the 32-byte data key as 64 hex characters (mode 0600).", valueName: "KEY"))
    var keyFile: String

    @Option(name: .customLong("out"), help: ArgumentHelp("Bundle file to create; it must not exist.", valueName: "FILE"))
    var output: String

    @Option(help: ArgumentHelp("Vault id to bind the bundle to, 32 hex characters (default: all zero, no vault).", valueName: "HEX"))
    var vaultId: String?

    @Option(help: ArgumentHelp("Creation time to record, ISO-8601 (default: now).", valueName: "TIME"))
    var now: String?

    @Option(help: ArgumentHelp("zstd level, 1-19.", valueName: "N"))
    var level: Int32 = 3

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard UserID(user) != nil else {
            throw ValidationError("--user '\(user)' is not a valid user id: use 1-128 characters of A-Z a-z 0-9 . _ - not starting with . or -")
        }
        guard CivilDay(iso: expiry) != nil else { throw ValidationError("--expiry '\(expiry)' is not a date of the form YYYY-MM-DD") }
        // Bytes, not Characters: Character.isHexDigit also accepts fullwidth digits, which Hex.decode does not.
        if let vaultId, vaultId.utf8.count != 32 || !vaultId.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) {
            throw ValidationError("--vault-id must be 32 lower-case hex characters")
        }
        if let now, Timestamp.parse(now) == nil { throw ValidationError("--now '\(now)' is not an ISO-8601 time such as 2026-11-29T03:00:00Z") }
        guard (1...19).contains(level) else { throw ValidationError("--level must be between 1 and 19") }
    }

    func run() throws {
        try reportingErrors {
            let key = try DataKeyFile.read(keyFile)
            let header = BundleHeader(
                vaultId: vaultId.map { hexBytes($0)! } ?? BundleHeader.zeroId,
                bundleId: try randomBundleId(),
                createdAt: now.flatMap(Timestamp.parse) ?? Timestamp.now,
                expiryDay: CivilDay(iso: expiry)!,
                userId: UserID(user)!)
            let sealed = try BundleWriter.seal(source: source, header: header, dataKey: key, to: output, compressionLevel: level)
            if json {
                printJSON([
                    "path": sealed.path, "bundleId": header.bundleIdHex, "userId": user, "expiryDay": expiry,
                    "files": sealed.manifest.fileCount, "plaintextBytes": sealed.manifest.totalFileBytes,
                    "bundleBytes": sealed.fileSize, "sha256": hexString(sealed.fileSHA256),
                ])
            } else {
                print("sealed \(sealed.manifest.fileCount) files (\(sealed.manifest.totalFileBytes) bytes) of \(user) into \(sealed.path) (\(sealed.fileSize) bytes, bundle \(header.bundleIdHex))")
            }
        }
    }
}
