import Foundation
import XCTest
import VaultCrypto
@testable import ShredVault

/// The outer wrap's known answers (samples/vectors/ratchet/outer-wrap.json), computed by tools/ratchet-vectors.py with
/// Python's `cryptography` package from vault-format.md §3.7 alone: the Swift code must open every value and agree on
/// every AAD, bucket and the root file's slot layout.
final class RatchetVectorTests: XCTestCase {
    struct Vectors: Decodable {
        struct Table: Decodable { var kind: Int; var table: String; var aad: String; var sealedTable: String }
        struct Row: Decodable { var keyId: String; var bucket: Int; var sealedPrivate: String; var aad: String; var wrapped: String }
        var vaultId: String, rootKey: String, generation: UInt64, buckets: Int, rootFileSlot: String
        var tables: [Table]
        var rows: [Row]
    }

    func load() throws -> Vectors {
        var dir = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { dir.deleteLastPathComponent() }
        let data = try Data(contentsOf: dir.appendingPathComponent("samples/vectors/ratchet/outer-wrap.json"))
        return try JSONDecoder().decode(Vectors.self, from: data)
    }

    func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex)! }

    func testOuterWrapKnownAnswers() throws {
        let v = try load()
        let vaultId = bytes(v.vaultId)
        XCTAssertEqual(v.tables.count, 2)
        XCTAssertEqual(v.rows.count, 3)
        let rootKey = SecretBytes(copying: bytes(v.rootKey))
        var tableBytes: [UInt8] = []
        for t in v.tables {
            let kind: Keystore.Kind = t.kind == 0 ? .keystore : .keyring
            let aad = KeystoreRatchet.tableAAD(vaultId: vaultId, kind: kind, generation: v.generation, buckets: v.buckets)
            XCTAssertEqual(Hex.encode(aad), t.aad)
            let table = try RootCipher.open(bytes(t.sealedTable), key: rootKey, aad: aad, what: "vector")
            XCTAssertEqual(table.withUnsafeBytes { Array($0) }, bytes(t.table))
            tableBytes = bytes(t.table)
            // The other database's AAD does not open it.
            let other = KeystoreRatchet.tableAAD(vaultId: vaultId, kind: kind == .keystore ? .keyring : .keystore, generation: v.generation, buckets: v.buckets)
            XCTAssertThrowsError(try RootCipher.open(bytes(t.sealedTable), key: rootKey, aad: other, what: "vector"))
        }
        let ratchet = KeystoreRatchet(root: nil, vaultId: vaultId)
        let table = SecretBytes(copying: tableBytes)
        for r in v.rows {
            let keyId = bytes(r.keyId)
            XCTAssertEqual(KeystoreRatchet.bucket(of: keyId, buckets: v.buckets), r.bucket)
            XCTAssertEqual(Hex.encode(KeystoreRatchet.rowAAD(vaultId: vaultId, keyId: keyId, bucket: r.bucket)), r.aad)
            XCTAssertEqual(try ratchet.unwrap(bytes(r.wrapped), keyId: keyId, table: table, buckets: v.buckets, path: "vector"), bytes(r.sealedPrivate))
            // Bound to its key id: another row's id does not open it.
            let otherId = keyId.map { $0 ^ 0x80 }
            XCTAssertThrowsError(try ratchet.unwrap(bytes(r.wrapped), keyId: otherId, table: table, buckets: v.buckets, path: "vector"))
            // Our wrap round-trips (its nonce is random, so only the opening is compared).
            let (wrapped, bucket) = try ratchet.wrap(bytes(r.sealedPrivate), keyId: keyId, table: table, buckets: v.buckets)
            XCTAssertEqual(bucket, r.bucket)
            XCTAssertEqual(try ratchet.unwrap(wrapped, keyId: keyId, table: table, buckets: v.buckets, path: "vector"), bytes(r.sealedPrivate))
        }
    }

    func testRootFileSlotLayout() throws {
        let v = try load()
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/root"
        var file = bytes(v.rootFileSlot) + [UInt8](repeating: 0, count: RootFile.slotSize - 80)
        file += [UInt8](repeating: 0, count: RootFile.slotSize)
        try writeFile(path, file, mode: 0o600)
        let root = try RootFile(path: path)
        XCTAssertEqual(try root.generations(), [v.generation])
        let t = v.tables[0]
        let opened = try root.open(bytes(t.sealedTable), generation: v.generation, aad: bytes(t.aad))
        XCTAssertEqual(opened.withUnsafeBytes { Array($0) }, bytes(t.table))
        try root.destroy(generation: v.generation)
        XCTAssertEqual(try root.generations(), [])
        XCTAssertEqual(try readBytes(path), [UInt8](repeating: 0, count: 2 * RootFile.slotSize), "destroyed in place: the slot is zeros")
        XCTAssertThrowsError(try root.open(bytes(t.sealedTable), generation: v.generation, aad: bytes(t.aad)))
    }
}
