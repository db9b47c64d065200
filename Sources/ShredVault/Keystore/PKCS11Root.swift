import Foundation

/// The destruction root in a PKCS#11 token (vault-format.md §3.7).
enum PKCS11Root {
    static func open(_ config: VaultConfig) throws -> DestructionRoot {
        throw VaultError.invalidArgument("this build of shredvault cannot open a destruction root in a PKCS#11 token (config names module \(config.root?.module ?? "?"))")
    }
}
