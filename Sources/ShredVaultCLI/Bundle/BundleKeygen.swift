import ArgumentParser
import ShredVault

struct BundleKeygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a new random 32-byte data key to a new file (mode 0600).")

    @Argument(help: "Path of the key file to create; it must not exist.")
    var keyFile: String

    func run() throws {
        try reportingErrors { try DataKeyFile.create(keyFile) }
    }
}
