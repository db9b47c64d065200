import CPKCS11
import Foundation
import XCTest

@testable import VaultCrypto
@testable import VaultHSM

/// PKCS11RootStore against a real SoftHSM2 token (a new token directory per test).
final class PKCS11RootStoreTests: SoftHSMTestCase {
    private let aad = Array("vault=v1;root".utf8)

    func testCreateSealOpenRoundTrip() throws {
        let store = try makeStore()
        XCTAssertEqual(try store.generations(), [])
        try store.create(generation: 1)
        try store.create(generation: 1)  // idempotent
        XCTAssertEqual(try store.generations(), [1])
        XCTAssertEqual(try store.objects(label: store.label(generation: 1)).count, 1, "no duplicate object")

        for count in [0, 1, 32, 200] {
            let secret = try SecretBytes.random(count: count)
            let sealed = try store.seal(secret, generation: 1, aad: aad)
            XCTAssertEqual(sealed.count, PKCS11RootStore.ivSize + count + PKCS11RootStore.tagSize)
            let again = try store.seal(secret, generation: 1, aad: aad)
            XCTAssertNotEqual(sealed, again, "a fresh IV per seal")
            XCTAssertNotEqual(Array(sealed[0..<12]), Array(again[0..<12]))
            XCTAssertEqual(try store.open(sealed, generation: 1, aad: aad), secret)
            XCTAssertEqual(try store.open(again, generation: 1, aad: aad), secret)
        }
        // Empty AAD is a valid AAD, and a different one from a non-empty AAD.
        let secret = try SecretBytes.random(count: 32)
        let sealed = try store.seal(secret, generation: 1, aad: [])
        XCTAssertEqual(try store.open(sealed, generation: 1, aad: []), secret)
        XCTAssertThrowsError(try store.open(sealed, generation: 1, aad: [0])) {
            XCTAssertEqual($0 as? PKCS11Error, .authenticationFailed)
        }
    }

    /// iv(12) ‖ ciphertext (the plaintext's length) ‖ tag(16); a change in any part fails.
    func testSealedLayoutIsIVCiphertextTag() throws {
        let store = try makeStore()
        try store.create(generation: 7)
        let secret = SecretBytes(copying: [UInt8](repeating: 0xA5, count: 48))
        let sealed = try store.seal(secret, generation: 7, aad: aad)
        XCTAssertEqual(sealed.count, 12 + 48 + 16)
        XCTAssertNotEqual(Array(sealed[12..<60]), [UInt8](repeating: 0xA5, count: 48), "not plaintext")
        for index in [0, 11, 12, 30, 59, 60, 75] {
            var tampered = sealed
            tampered[index] ^= 0x01
            XCTAssertThrowsError(try store.open(tampered, generation: 7, aad: aad), "byte \(index)") {
                XCTAssertEqual($0 as? PKCS11Error, .authenticationFailed, "byte \(index)")
            }
        }
    }

    func testWrongAADTamperingAndOtherGenerationFail() throws {
        let store = try makeStore()
        try store.create(generation: 1)
        try store.create(generation: 2)
        let secret = try SecretBytes.random(count: 32)
        let sealed = try store.seal(secret, generation: 1, aad: aad)

        XCTAssertThrowsError(try store.open(sealed, generation: 1, aad: Array("vault=v2;root".utf8))) {
            XCTAssertEqual($0 as? PKCS11Error, .authenticationFailed)
        }
        for index in sealed.indices {
            var tampered = sealed
            tampered[index] ^= 0x80
            XCTAssertThrowsError(try store.open(tampered, generation: 1, aad: aad), "byte \(index)") {
                XCTAssertEqual($0 as? PKCS11Error, .authenticationFailed, "byte \(index)")
            }
        }
        XCTAssertThrowsError(try store.open(sealed + [0], generation: 1, aad: aad)) {
            XCTAssertEqual($0 as? PKCS11Error, .authenticationFailed)
        }
        XCTAssertThrowsError(try store.open(Array(sealed.dropLast()), generation: 1, aad: aad)) {
            XCTAssertEqual($0 as? PKCS11Error, .authenticationFailed)
        }
        XCTAssertThrowsError(try store.open(Array(sealed.prefix(27)), generation: 1, aad: aad)) {
            guard case .invalidSealedData = $0 as? PKCS11Error else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try store.open(sealed, generation: 2, aad: aad), "another generation's key") {
            XCTAssertEqual($0 as? PKCS11Error, .authenticationFailed)
        }
        XCTAssertThrowsError(try store.open(sealed, generation: 3, aad: aad)) {
            XCTAssertEqual($0 as? PKCS11Error, .objectNotFound(label: "shredvault-root-test-3"))
        }
        XCTAssertThrowsError(try store.seal(secret, generation: 3, aad: aad)) {
            XCTAssertEqual($0 as? PKCS11Error, .objectNotFound(label: "shredvault-root-test-3"))
        }
        // The session is still usable after the failed decryptions.
        XCTAssertEqual(try store.open(sealed, generation: 1, aad: aad), secret)
    }

    func testDestroyIsPermanentAcrossSessionsModulesAndProcesses() throws {
        let secret = try SecretBytes.random(count: 32)
        var sealed: [UInt8] = []
        let objectsBefore: Int
        do {
            let store = try makeStore()
            try store.create(generation: 1)
            try store.create(generation: 2)
            sealed = try store.seal(secret, generation: 1, aad: aad)
            objectsBefore = try token.objectFileCount()
            XCTAssertEqual(
                Set(try token.secretKeyLabelsFromAnotherProcess()),
                ["shredvault-root-test-1", "shredvault-root-test-2"], "another process sees both generations")

            try store.destroy(generation: 1)
            XCTAssertEqual(try store.generations(), [2])
            XCTAssertThrowsError(try store.open(sealed, generation: 1, aad: aad)) {
                XCTAssertEqual($0 as? PKCS11Error, .objectNotFound(label: "shredvault-root-test-1"))
            }
            try store.destroy(generation: 1)  // idempotent
            try store.destroy(generation: 9)  // never existed
            XCTAssertEqual(try token.objectFileCount(), objectsBefore - 1, "the object's file is gone")
        }
        // Every module reference is gone, so SoftHSM was finalized; a new module instance reads the token
        // from its files again.
        XCTAssertFalse(LoadedLibrary.isLoaded(path: SoftHSMFixture.modulePath))
        let reopened = try makeStore()
        XCTAssertEqual(try reopened.generations(), [2])
        XCTAssertThrowsError(try reopened.open(sealed, generation: 1, aad: aad)) {
            XCTAssertEqual($0 as? PKCS11Error, .objectNotFound(label: "shredvault-root-test-1"))
        }
        // Re-creating generation 1 makes a new key, which cannot open what the destroyed one sealed.
        try reopened.create(generation: 1)
        XCTAssertThrowsError(try reopened.open(sealed, generation: 1, aad: aad)) {
            XCTAssertEqual($0 as? PKCS11Error, .authenticationFailed)
        }
        try reopened.destroy(generation: 1)
        XCTAssertEqual(try token.secretKeyLabelsFromAnotherProcess(), ["shredvault-root-test-2"])
    }

    func testRootKeyIsNonExtractable() throws {
        let store = try makeStore()
        try store.create(generation: 3)
        let objects = try store.objects(label: store.label(generation: 3))
        XCTAssertEqual(objects.count, 1)
        let key = try XCTUnwrap(objects.first)
        let session = store.session
        XCTAssertThrowsError(try session.attributeValue(CK_ATTRIBUTE_TYPE(CKA_VALUE), of: key)) {
            XCTAssertEqual(
                $0 as? PKCS11Error, .call(function: "C_GetAttributeValue", code: UInt(CKR_ATTRIBUTE_SENSITIVE)))
            XCTAssertTrue("\($0)".contains("CKR_ATTRIBUTE_SENSITIVE"), "\($0)")
        }
        XCTAssertFalse(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), of: key))
        XCTAssertTrue(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_NEVER_EXTRACTABLE), of: key))
        XCTAssertTrue(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), of: key))
        XCTAssertTrue(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_ALWAYS_SENSITIVE), of: key))
        XCTAssertTrue(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_TOKEN), of: key))
        XCTAssertTrue(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_PRIVATE), of: key))
        XCTAssertTrue(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_ENCRYPT), of: key))
        XCTAssertTrue(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_DECRYPT), of: key))
        XCTAssertFalse(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_WRAP), of: key))
        XCTAssertFalse(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_DERIVE), of: key))
        let length = try session.attributeValue(CK_ATTRIBUTE_TYPE(CKA_VALUE_LEN), of: key)
        XCTAssertEqual(length, withUnsafeBytes(of: CK_ULONG(32)) { Array($0) })
        XCTAssertEqual(
            try session.attributeValue(CK_ATTRIBUTE_TYPE(CKA_LABEL), of: key), Array("shredvault-root-test-3".utf8))
    }

    func testWrongPINIsAClearErrorWithoutThePIN() throws {
        let wrong = "wrong-pin-98765"
        XCTAssertThrowsError(
            try PKCS11RootStore(
                module: SoftHSMFixture.modulePath, tokenLabel: token.label,
                pin: SecretBytes(copying: Array(wrong.utf8)), namespace: "shredvault-root-test")
        ) {
            XCTAssertEqual($0 as? PKCS11Error, .call(function: "C_Login", code: UInt(CKR_PIN_INCORRECT)))
            let message = "\($0)"
            XCTAssertTrue(message.contains("C_Login") && message.contains("CKR_PIN_INCORRECT"), message)
            XCTAssertTrue(message.contains("wrong PIN"), message)
            XCTAssertFalse(message.contains(wrong), message)
        }
        // The right PIN still works afterwards (the failed login left no session behind).
        XCTAssertEqual(try makeStore().generations(), [])
    }

    func testMissingOrInvalidModuleIsAClearError() throws {
        let missing = token.directory.appendingPathComponent("no-such-module.so").path
        XCTAssertThrowsError(try makeStore(module: missing)) {
            XCTAssertEqual($0 as? PKCS11Error, .moduleNotFound(path: missing))
            XCTAssertTrue("\($0)".contains(missing), "\($0)")
        }
        // A file that is not a shared library.
        XCTAssertThrowsError(try makeStore(module: token.configuration.path)) {
            guard case let .moduleLoadFailed(path, detail) = $0 as? PKCS11Error else { return XCTFail("\($0)") }
            XCTAssertEqual(path, token.configuration.path)
            XCTAssertFalse(detail.isEmpty)
        }
        // A shared library that is not a PKCS#11 module.
        let notAModule = "/lib/x86_64-linux-gnu/libz.so.1"
        if FileManager.default.fileExists(atPath: notAModule) {
            XCTAssertThrowsError(try makeStore(module: notAModule)) {
                XCTAssertEqual($0 as? PKCS11Error, .missingFunction(path: notAModule, function: "C_GetFunctionList"))
            }
        }
    }

    func testUnknownTokenLabelAndInvalidNames() throws {
        XCTAssertThrowsError(try makeStore(label: "no-such-token")) {
            XCTAssertEqual($0 as? PKCS11Error, .tokenNotFound(label: "no-such-token"))
        }
        XCTAssertThrowsError(try makeStore(label: String(repeating: "x", count: 33))) {
            guard case .invalidLabel = $0 as? PKCS11Error else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try makeStore(namespace: "")) {
            guard case .invalidLabel = $0 as? PKCS11Error else { return XCTFail("\($0)") }
        }
    }

    func testOperationsCountTokenCalls() throws {
        let store = try makeStore()
        XCTAssertEqual(store.operations, 0, "opening and login are not counted")
        try store.create(generation: 1)  // find (init, find, final) + C_GenerateKey
        XCTAssertEqual(store.operations, 4)
        try store.create(generation: 1)  // find only
        XCTAssertEqual(store.operations, 7)
        let sealed = try store.seal(SecretBytes(count: 32), generation: 1, aad: aad)  // find + init + encrypt
        XCTAssertEqual(store.operations, 12)
        _ = try store.open(sealed, generation: 1, aad: aad)  // find + init + decrypt
        XCTAssertEqual(store.operations, 17)
        _ = try store.generations()  // find + 2 × C_GetAttributeValue per object
        XCTAssertEqual(store.operations, 22)
        try store.destroy(generation: 1)  // find + C_DestroyObject
        XCTAssertEqual(store.operations, 26)
        try store.destroy(generation: 1)  // find only
        XCTAssertEqual(store.operations, 29)
    }

    func testNamespacesAreSeparateAndStoresShareOneLogin() throws {
        let first = try makeStore(namespace: "ns")
        let second = try makeStore(namespace: "ns-1")
        try first.create(generation: 1)
        try first.create(generation: 10)
        try second.create(generation: 5)
        XCTAssertEqual(try first.generations(), [1, 10])
        XCTAssertEqual(try second.generations(), [5])
        // Objects of other applications on the same token are ignored.
        for label in ["ns-01", "ns-x", "ns-", "ns--1", "ns-18446744073709551616"] {
            _ = try first.session.generateKey(
                mechanism: CK_MECHANISM_TYPE(CKM_AES_KEY_GEN),
                template: AttributeTemplate()
                    .add(CK_ATTRIBUTE_TYPE(CKA_CLASS), ulong: CK_ULONG(CKO_SECRET_KEY))
                    .add(CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), ulong: CK_ULONG(CKK_AES))
                    .add(CK_ATTRIBUTE_TYPE(CKA_TOKEN), true)
                    .add(CK_ATTRIBUTE_TYPE(CKA_VALUE_LEN), ulong: 32)
                    .add(CK_ATTRIBUTE_TYPE(CKA_LABEL), string: label))
        }
        XCTAssertEqual(try first.generations(), [1, 10])
        XCTAssertEqual(try second.generations(), [5])
        try first.create(generation: UInt64.max)
        XCTAssertEqual(try first.generations(), [1, 10, UInt64.max])

        // PKCS#11 login belongs to the process and token: closing one store's session must not log the
        // other out.
        let sealed = try second.seal(SecretBytes(count: 16), generation: 5, aad: aad)
        try first.session.close()
        XCTAssertEqual(try second.open(sealed, generation: 5, aad: aad), SecretBytes(count: 16))
        XCTAssertEqual(try second.generations(), [5], "private objects still visible: still logged in")
    }

    func testTwoTokenDirectoriesInOneProcess() throws {
        do {
            let store = try makeStore()
            try store.create(generation: 1)
        }
        let firstConfiguration = token.configuration.path
        // A second fixture: its own directory, its own SOFTHSM2_CONF, loaded after the module was released.
        let second = try SoftHSMFixture(label: "second-token")
        do {
            let store = try PKCS11RootStore(
                module: SoftHSMFixture.modulePath, tokenLabel: "second-token", pin: second.pin,
                namespace: "shredvault-root-test")
            XCTAssertEqual(try store.generations(), [], "a different token directory")
            XCTAssertThrowsError(try makeStore()) {
                XCTAssertEqual($0 as? PKCS11Error, .tokenNotFound(label: token.label))
            }
        }
        setenv("SOFTHSM2_CONF", firstConfiguration, 1)
        XCTAssertEqual(try makeStore().generations(), [1])
    }

    func testTwoTokensInOneDirectory() throws {
        try token.initializeToken(label: "other-token")
        let first = try makeStore()
        let second = try makeStore(label: "other-token")
        try first.create(generation: 1)
        XCTAssertEqual(try second.generations(), [])
        try second.create(generation: 2)
        XCTAssertEqual(try first.generations(), [1])
        XCTAssertEqual(try second.generations(), [2])
    }

    func testOneStoreSharedBetweenThreads() throws {
        let store = try makeStore()
        try store.create(generation: 1)
        try store.create(generation: 2)
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            do {
                for round in 0..<10 {
                    let generation = UInt64(1 + (worker + round) % 2)
                    let secret = try SecretBytes.random(count: 32)
                    let sealed = try store.seal(secret, generation: generation, aad: [UInt8(worker)])
                    guard try store.open(sealed, generation: generation, aad: [UInt8(worker)]) == secret else {
                        throw FixtureError("worker \(worker) round \(round): wrong plaintext")
                    }
                }
            } catch {
                failures.add("\(error)")
            }
        }
        XCTAssertEqual(failures.all, [])
        XCTAssertEqual(store.operations, 8 + 8 * 10 * 10, "two creates, then 80 seals and 80 opens of 5 calls each")
    }

    private func makeStore(module: String) throws -> PKCS11RootStore {
        try PKCS11RootStore(
            module: module, tokenLabel: token.label, pin: token.pin, namespace: "shredvault-root-test")
    }
}

private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ message: String) {
        lock.lock()
        messages.append(message)
        lock.unlock()
    }
    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return messages
    }
}
