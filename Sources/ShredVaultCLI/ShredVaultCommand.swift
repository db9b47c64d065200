import ArgumentParser

@main
struct ShredVaultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shredvault",
        abstract: "Encrypted archive vault for inactive users' data, with crypto-shredding.",
        discussion: """
            Each user is stored as a bundle: a pax tar, compressed with zstd and encrypted with
            AES-256-GCM (Cobblestone-256). Destroying a key makes every copy of the data unreadable.

            The `bundle` commands are the low-level forensic and interoperability layer: they seal and
            open single bundles with a bare 32-byte data key. vault-format.md specifies the format.

            EXIT CODES
              0   success
              1   unexpected internal error
              64  usage error (bad option or value)
              65  bad data: corrupt, truncated or tampered bundle; invalid source or contents
              66  an input (file, bundle, directory) does not exist
              69  bundle written by a newer format version or unknown algorithm; upgrade shredvault
              73  the output or target already exists
              74  I/O error (disk full, permission denied)
              77  key problem: wrong key, or key file missing, malformed or accessible by others
            """,
        version: "0.1.0",
        subcommands: [BundleCommand.self]
    )
}
