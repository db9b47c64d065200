import Foundation
import XCTest
import VaultCrypto
@testable import ShredVault

/// Known answers for G8's signed objects (samples/vectors/provenance/signed-objects.json), computed by
/// tools/provenance-vectors.py with Python's `cryptography` package from vault-format.md §3.10 alone: the Swift code
/// must build the same signed bytes from the same fields, accept the signatures made there (and refuse any changed
/// byte), derive the same signer key id and decode the version 2 sidecar.
final class ProvenanceVectorTests: XCTestCase {
    struct Vectors: Decodable {
        struct Bundle: Decodable { var prefix, fileSha256, inner, innerSha256, body, message, signature: String; var size: Int64 }
        struct Seal: Decodable { var role, outerKeyId, outer, body, message, signature: String; var expiryDay: Int }
        var signerScalar, signerPublicKey, signerKeyId, vaultId, bundleId, sidecar: String
        var bundle: Bundle
        var seal: Seal
    }

    func load() throws -> Vectors {
        var dir = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { dir.deleteLastPathComponent() }
        let data = try Data(contentsOf: dir.appendingPathComponent("samples/vectors/provenance/signed-objects.json"))
        return try JSONDecoder().decode(Vectors.self, from: data)
    }

    func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex)! }

    func testSignedObjectKnownAnswers() throws {
        let v = try load()
        let key = try P256PrivateKey(rawScalar: SecretBytes(copying: bytes(v.signerScalar)))
        XCTAssertEqual(Hex.encode(key.publicKey.x963Representation), v.signerPublicKey)
        XCTAssertEqual(Hex.encode(try KeyHierarchy.keyId(key.publicKey)), v.signerKeyId)
        let trust = TrustRecord(format: TrustRecord.formatName, vaultId: v.vaultId, masterKey: Hex.encode(try P256PrivateKey.generate().publicKey.x963Representation),
                                masterKeyId: String(repeating: "0", count: 32),
                                signers: [.init(keyId: v.signerKeyId, publicKey: v.signerPublicKey, role: "job", addedAt: 0, revokedAt: 5)],
                                serial: 2, signedAt: 5)

        // Bundle statement.
        XCTAssertEqual(Hex.encode(try SHA256.hash(bytes(v.bundle.inner))), v.bundle.innerSha256)
        let bundleBody = BundleStatement.bundle(prefix: bytes(v.bundle.prefix), size: v.bundle.size, fileSHA256: bytes(v.bundle.fileSha256),
                                                innerSHA256: bytes(v.bundle.innerSha256))
        XCTAssertEqual(Hex.encode(bundleBody), v.bundle.body)
        XCTAssertEqual(Hex.encode(SignedObject.bundle.message(bundleBody)), v.bundle.message)
        let bundleSig = try XCTUnwrap(VaultSignature(hex: v.bundle.signature))
        XCTAssertNil(trust.problem(with: bundleSig, object: .bundle, body: bundleBody), "a revoked signer's signature stays valid")
        XCTAssertEqual(trust.problem(with: bundleSig, object: .seal, body: bundleBody), .invalid(v.signerKeyId), "the context is signed")

        // Seal statement.
        let sealBody = BundleStatement.seal(vaultId: bytes(v.vaultId), bundleId: bytes(v.bundleId), role: KeyRole(rawValue: v.seal.role)!,
                                            outerKeyId: bytes(v.seal.outerKeyId), expiryDay: v.seal.expiryDay, outer: bytes(v.seal.outer))
        XCTAssertEqual(Hex.encode(sealBody), v.seal.body)
        XCTAssertEqual(Hex.encode(SignedObject.seal.message(sealBody)), v.seal.message)
        let sealSig = try XCTUnwrap(VaultSignature(hex: v.seal.signature))
        XCTAssertNil(trust.problem(with: sealSig, object: .seal, body: sealBody))
        for i in stride(from: 0, to: sealBody.count, by: 11) {
            var bad = sealBody
            bad[i] ^= 0x01
            XCTAssertEqual(trust.problem(with: sealSig, object: .seal, body: bad), .invalid(v.signerKeyId), "body byte \(i)")
        }
        for i in 0..<VaultSignature.length {
            var bad = sealSig.encoded
            bad[i] ^= 0x01
            XCTAssertNotNil(trust.problem(with: VaultSignature(bad), object: .seal, body: sealBody), "signature byte \(i)")
        }
        // A signature made here verifies the same way: sign, and check with the fields' bytes.
        let ours = try VaultSigner(key).sign(.seal, sealBody)
        XCTAssertNil(trust.problem(with: ours, object: .seal, body: sealBody))

        // Version 2 sidecar.
        let sidecar = try DEKSidecar.decode(bytes(v.sidecar), path: "vector")
        XCTAssertEqual(sidecar.outerRole, .hold)
        XCTAssertEqual(sidecar.outerKeyId, bytes(v.seal.outerKeyId))
        XCTAssertEqual(sidecar.sealedDEK, bytes(v.seal.outer))
        XCTAssertEqual(sidecar.provenance, .init(innerSHA256: bytes(v.bundle.innerSha256), bundleSignature: bundleSig, sealSignature: sealSig))
        XCTAssertEqual(Hex.encode(sidecar.encoded()), v.sidecar)
        XCTAssertThrowsError(try DEKSidecar.decode(Array(bytes(v.sidecar).dropLast()), path: "vector"))
        var v1Magic = bytes(v.sidecar)
        v1Magic[5] = UInt8(ascii: "1")
        XCTAssertThrowsError(try DEKSidecar.decode(v1Magic, path: "vector"), "a version 1 magic with version 2 length")
    }
}
