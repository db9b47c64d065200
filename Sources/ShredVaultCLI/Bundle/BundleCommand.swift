import ArgumentParser

struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Seal, open and inspect single bundles with a bare data key (forensic/interop layer).",
        discussion: """
            A data key file holds 32 random bytes as 64 hex characters and must have mode 0600.
            Typical use:
              shredvault bundle keygen dek.hex
              shredvault bundle seal --from users/u0100037 --user u0100037 --expiry 2027-02-26 \\
                  --key-file dek.hex --out u0100037.svb
              shredvault bundle inspect u0100037.svb --json
              shredvault bundle open u0100037.svb --key-file dek.hex --to restored/
            """,
        subcommands: [BundleKeygen.self, BundleSeal.self, BundleOpen.self, BundleInspect.self]
    )
}
