import Foundation
import XCTest
import VaultCrypto
@testable import ShredVault

final class KeystoreTests: XCTestCase {
    /// G2 at scale: with a multi-page B-tree (page splits and merges), destroyed keys' bytes are in no file.
    func testDestroyedKeysLeaveNoBytesInAnyFile() throws {
        let dir = try makeTemporaryDirectory(self)
        let ks = try Keystore(path: dir + "/keystore.db")
        let master = try P256PrivateKey.generate()
        let vaultId = [UInt8](repeating: 5, count: 16)
        let subjects = (0..<2000).map { "u\(1_000_000 + $0)" }
        var keys: [StoredKey] = []
        for chunk in stride(from: 0, to: subjects.count, by: 500) {
            keys += try ks.keysCreatingIfNeeded(role: .user, subjects: Array(subjects[chunk..<min(chunk + 500, subjects.count)]),
                                                master: master.publicKey, vaultId: vaultId, now: 0).values
        }
        XCTAssertEqual(try ks.count()[.user], 2000)
        var rng = SystemRandomNumberGenerator()
        let victims = Array(keys.shuffled(using: &rng).prefix(300))
        for chunk in stride(from: 0, to: victims.count, by: 37) {
            try ks.destroy(keyIds: victims[chunk..<min(chunk + 37, victims.count)].map(\.keyId))
        }
        XCTAssertEqual(try ks.count()[.user], 1700)
        let files = try Posix.listDirectory(dir)
        XCTAssertEqual(files, ["keystore.db"], "no journal left behind")
        let bytes = try readBytes(dir + "/keystore.db")
        for v in victims {
            XCTAssertFalse(containsBytes(bytes, v.sealedPrivate), "sealed private key of \(v.subject) survives")
            XCTAssertFalse(containsBytes(bytes, v.publicKey.x963Representation), "public key of \(v.subject) survives")
        }
        // The survivors are intact and still open with the master key.
        let survivor = try XCTUnwrap(keys.first { k in !victims.contains { $0.keyId == k.keyId } })
        let stored = try XCTUnwrap(try ks.key(id: survivor.keyId))
        XCTAssertTrue(containsBytes(bytes, stored.sealedPrivate), "the search can find a key that exists")
        XCTAssertEqual(try ks.privateKey(stored, restoreKey: master, vaultId: vaultId).publicKey, survivor.publicKey)
    }
}
