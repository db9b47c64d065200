import ArgumentParser
import ShredVault

struct BundleInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a bundle's header. Needs no key.",
        discussion: "The header is not secret; it is authenticated by the key commitment when the bundle is opened, so inspect alone does not prove it genuine.")

    @Argument(help: "Bundle file to inspect.")
    var bundle: String

    @Flag(help: "Print the header as JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let (h, bytes) = try BundleReader.readHeader(path: bundle)
            let size = try BundleReader.fileSize(path: bundle)
            let fields: [(String, Any)] = [
                ("formatVersion", Int(BundleHeader.currentVersion)),
                ("algorithm", "cobblestone-256+zstd+pax"),
                ("headerLength", bytes.count),
                ("vaultId", h.vaultIdHex),
                ("bundleId", h.bundleIdHex),
                ("userId", h.userId.rawValue),
                ("createdAt", Timestamp.format(h.createdAt)),
                ("expiryDay", h.expiryDay.iso),
                ("userKeyId", hexString(h.userKeyId)),
                ("dayKeyId", hexString(h.dayKeyId)),
                ("fileSize", size),
            ]
            if json {
                printJSON(Dictionary(uniqueKeysWithValues: fields))
            } else {
                for (k, v) in fields { print("\(k): \(v)") }
            }
        }
    }
}
