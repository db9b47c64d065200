import Foundation
import VaultCrypto
import VaultHSM

/// The destruction root in a PKCS#11 token (vault-format.md §3.8): every generation is a non-extractable AES-256 key
/// object labelled `shredvault-root-<vault id>-<generation>`, destroyed with `C_DestroyObject`. The PIN comes from
/// `$SHREDVAULT_PKCS11_PIN` when set, else the config's `pinFile` (mode 0600); never from the command line.
final class PKCS11Root: DestructionRoot {
    static let pinVariable = "SHREDVAULT_PKCS11_PIN"
    let store: PKCS11RootStore
    let location: String

    private init(store: PKCS11RootStore, location: String) {
        self.store = store
        self.location = location
    }

    static func open(_ config: VaultConfig) throws -> DestructionRoot {
        guard let module = config.root?.module, let token = config.root?.token else {
            throw VaultError.malformedInput(path: "config", line: 1, reason: "a pkcs11 destruction root needs its module and token")
        }
        let location = "pkcs11:token=\(token);object=shredvault-root-\(config.vaultId) (module \(module))"
        do {
            // $SHREDVAULT_PKCS11_PIN, when set, overrides the PIN file the config records.
            let fromEnvironment = !(ProcessInfo.processInfo.environment[pinVariable] ?? "").isEmpty
            let pin = try PKCS11PIN.load(environmentVariable: pinVariable, file: fromEnvironment ? nil : config.root?.pinFile)
            let store = try PKCS11RootStore(module: module, tokenLabel: token, pin: pin, namespace: "shredvault-root-" + config.vaultId)
            return PKCS11Root(store: store, location: location)
        } catch let e as PKCS11Error {
            throw Self.mapped(e, location: location)
        }
    }

    static func mapped(_ e: PKCS11Error, location: String) -> VaultError {
        switch e {
        case .authenticationFailed:
            return .corruptBundle(path: location, reason: "ratchet wrap does not authenticate (wrong root generation, or modified)")
        case .objectNotFound:
            return .unrecoverable(user: "(keystore)", date: "an earlier date", reason: "destruction root generation no longer exists in \(location)")
        case .pinMissing, .pinFile:
            return .keyFile(path: location, reason: "\(e) (PIN file in the config's root.pinFile, or $\(pinVariable))")
        default:
            return .keyFile(path: location, reason: e.description)
        }
    }

    private func call<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as PKCS11Error { throw Self.mapped(e, location: location) }
    }

    var operations: Int { store.operations }
    func generations() throws -> [UInt64] { try call { try store.generations() } }
    func create(generation: UInt64) throws { try call { try store.create(generation: generation) } }
    func seal(_ plaintext: SecretBytes, generation: UInt64, aad: [UInt8]) throws -> [UInt8] {
        try call { try store.seal(plaintext, generation: generation, aad: aad) }
    }
    func open(_ sealed: [UInt8], generation: UInt64, aad: [UInt8]) throws -> SecretBytes {
        try call { try store.open(sealed, generation: generation, aad: aad) }
    }
    func destroy(generation: UInt64) throws { try call { try store.destroy(generation: generation) } }
}
