import XCTest

@testable import VaultCrypto

/// Known answers for HMAC-SHA-256 (RFC 4231 §4.2–4.8, all seven test cases) and MD5 (RFC 1321 §A.5, the
/// whole test suite), plus incremental use and reuse after `finalize()`.
final class HMACAndMD5Tests: XCTestCase {
    /// RFC 4231 test cases 1–7: key, data, HMAC-SHA-256 (test case 5 is truncated to 128 bits by the RFC).
    private let rfc4231: [(key: [UInt8], data: [UInt8], tag: String)] = [
        ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (Array(0x01...0x19), [UInt8](repeating: 0xcd, count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        ([UInt8](repeating: 0x0c, count: 20), Array("Test With Truncation".utf8),
         "a3b6167473100ee06e0c796c2955552b"),
        ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ([UInt8](repeating: 0xaa, count: 131),
         Array(("This is a test using a larger than block-size key and a larger than block-size data. The key needs to "
                + "be hashed before being used by the HMAC algorithm.").utf8),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    func testHMACSHA256RFC4231() throws {
        for (index, vector) in rfc4231.enumerated() {
            let tag = try HMACSHA256.authenticationCode(key: SecretBytes(copying: vector.key), message: vector.data)
            XCTAssertEqual(tag.count, HMACSHA256.byteCount)
            XCTAssertEqual(
                Hex.encode(tag.prefix(vector.tag.count / 2)), vector.tag, "RFC 4231 test case \(index + 1)")
        }
    }

    func testHMACSHA256IncrementalReuseAndSecretOutput() throws {
        let vector = rfc4231[6]
        let mac = try HMACSHA256(key: SecretBytes(copying: vector.key))
        for split in [0, 1, 64, 65, vector.data.count] {
            try mac.update(Array(vector.data[..<split]))
            try mac.update(Array(vector.data[split...]))
            XCTAssertEqual(Hex.encode(try mac.finalize()), vector.tag, "split at \(split)")  // same key each round
        }
        try mac.update(vector.data)
        XCTAssertEqual(try mac.finalizeSecret().hexEncodedString(), vector.tag)
        XCTAssertEqual(
            try HMACSHA256.derivedKey(key: SecretBytes(copying: vector.key), message: vector.data).hexEncodedString(),
            vector.tag)
        // An empty key is a valid HMAC key (the RFC 2104 padding of zero bytes).
        XCTAssertEqual(
            Hex.encode(try HMACSHA256.authenticationCode(key: SecretBytes(count: 0), message: [])),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    /// RFC 1321 appendix A.5, the MD5 test suite.
    func testMD5RFC1321() throws {
        let suite: [(String, String)] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (String(repeating: "1234567890", count: 8), "57edf4a22be3c955ac49da2e2107b67a"),
        ]
        for (message, digest) in suite {
            XCTAssertEqual(Hex.encode(try MD5.hash(Array(message.utf8))), digest, "MD5(\"\(message)\")")
        }
        let md5 = try MD5()
        let long = Array(String(repeating: "1234567890", count: 8).utf8)
        try md5.update(Array(long[..<33]))
        try long[33...].withUnsafeBytes { try md5.update($0) }
        XCTAssertEqual(Hex.encode(try md5.finalize()), "57edf4a22be3c955ac49da2e2107b67a")
        XCTAssertEqual(Hex.encode(try md5.finalize()), "d41d8cd98f00b204e9800998ecf8427e")  // reset after finalize
    }
}
