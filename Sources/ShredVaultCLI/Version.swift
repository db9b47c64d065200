import ShredVault

/// The tool's version, in one place (`shredvault --version`).
enum Version {
    static let tool = "0.1.0"

    /// "0.1.0 (vault format shredvault-vault/v1, bundle format 1, catalog schema v9-receipts, JSON schema 1)".
    static var description: String {
        "\(tool) (vault format \(FormatVersions.vault), bundle format \(FormatVersions.bundle), "
            + "catalog schema \(FormatVersions.catalogSchema), JSON schema \(FormatVersions.jsonSchema))"
    }
}
