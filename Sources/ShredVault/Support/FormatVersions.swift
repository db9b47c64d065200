/// The versions of what this build reads and writes, for `shredvault --version` and the install notes: the vault
/// directory's config format (vault-format.md §6), the bundle format (§2.8), the catalog's latest migration (§6;
/// an older catalog is migrated when a job first opens it) and the `--json` schema (docs/json-schema.md).
public enum FormatVersions {
    public static let vault = VaultConfig.formatName
    public static let bundle = Int(BundleHeader.currentVersion)
    public static var catalogSchema: String { CatalogSchema.migrator().migrations.last ?? "none" }
    /// `schemaVersion` of every `--json` object (docs/json-schema.md).
    public static let jsonSchema = 1
}
