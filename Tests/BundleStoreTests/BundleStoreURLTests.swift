import XCTest

@testable import ShredVault

/// `s3://BUCKET[/PREFIX]` as vault-format.md §6.5 defines it, and the config field that records it (no store needed).
final class BundleStoreURLTests: XCTestCase {
    func testParsesBucketAndPrefix() throws {
        let plain = try BundleStoreURL(parsing: "s3://my-bucket.1")
        XCTAssertEqual(plain.bucket, "my-bucket.1")
        XCTAssertEqual(plain.prefix, "")
        XCTAssertEqual(plain.description, "s3://my-bucket.1")
        let nested = try BundleStoreURL(parsing: "s3://abc/vaults/v1//")
        XCTAssertEqual(nested.prefix, "vaults/v1/")
        XCTAssertEqual(nested.description, "s3://abc/vaults/v1")
        let store = S3BundleStore(nested, environment: [:])
        XCTAssertEqual(store.key("bundles/2027/02/26/ab.svb"), "vaults/v1/2027/02/26/ab.svb")
        XCTAssertEqual(store.location(forKey: "vaults/v1/2027/02/26/ab.dek"), "bundles/2027/02/26/ab.dek")
        XCTAssertNil(store.location(forKey: "other/2027/02/26/ab.dek"))
    }

    func testRefusesMalformedURLs() {
        for text in ["", "s3:/abc", "http://abc/p", "s3://ab", "s3://ABC", "s3://a_b_c", "s3://" + String(repeating: "a", count: 64),
                     "s3://abc/a//b", "s3://abc/../x", "s3://abc/./x", "s3://abc/a\nb", "s3://abc/a\u{200B}b"] {
            XCTAssertThrowsError(try BundleStoreURL(parsing: text), text) { error in
                guard case .invalidArgument = error as? VaultError else { return XCTFail("\(text): \(error)") }
            }
        }
    }

    /// The client is made on first use: a vault whose store has no credentials in the environment opens, and the
    /// first call that needs the store fails with one object-store line that names the variables.
    func testMissingCredentialsFailOnFirstUseWithOneLine() throws {
        let store = S3BundleStore(try BundleStoreURL(parsing: "s3://abc/p"), environment: [:])
        XCTAssertThrowsError(try store.list()) { error in
            guard case .objectStore(let text) = error as? VaultError else { return XCTFail("\(error)") }
            XCTAssertFalse(text.contains("\n"), text)
            XCTAssertTrue(text.contains("AWS_"), text)
        }
    }
}
