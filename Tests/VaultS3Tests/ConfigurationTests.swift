import Foundation
import XCTest

@testable import VaultS3

/// Configuration from the environment, endpoint parsing, addressing, XML answers and one-line errors: no network.
final class ConfigurationTests: XCTestCase {
    private let credentials = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cr3t"]

    func testEnvironment() throws {
        var environment = credentials
        environment["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9000/"
        environment["AWS_REGION"] = "eu-west-1"
        environment["AWS_SESSION_TOKEN"] = "tok"
        let configuration = try S3Configuration.fromEnvironment(environment)
        XCTAssertEqual(configuration.endpoint.description, "http://127.0.0.1:9000")
        XCTAssertEqual(configuration.region, "eu-west-1")
        XCTAssertEqual(configuration.addressing, .path)
        XCTAssertEqual(configuration.credentials.accessKeyID, "AKID")
        XCTAssertEqual(configuration.credentials.sessionToken, "tok")

        let aws = try S3Configuration.fromEnvironment(credentials.merging(["AWS_DEFAULT_REGION": "ap-south-1"]) { $1 })
        XCTAssertEqual(aws.endpoint.description, "https://s3.ap-south-1.amazonaws.com")
        XCTAssertEqual(aws.addressing, .virtualHosted)
        XCTAssertEqual(try S3Configuration.fromEnvironment(credentials).region, "us-east-1")
    }

    func testMissingOrMalformedSettingsNameTheVariable() {
        let cases: [([String: String], String)] = [
            ([:], "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            (["AWS_ACCESS_KEY_ID": "AKID"], "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            (credentials.merging(["AWS_ENDPOINT_URL": "ftp://host"]) { $1 }, "AWS_ENDPOINT_URL"),
            (credentials.merging(["AWS_ENDPOINT_URL": "127.0.0.1:9000"]) { $1 }, "AWS_ENDPOINT_URL"),
            (credentials.merging(["AWS_ENDPOINT_URL": "http://user:pw@host"]) { $1 }, "must not contain a user"),
            (credentials.merging(["AWS_REGION": "US East"]) { $1 }, "AWS_REGION"),
        ]
        for (environment, expected) in cases {
            XCTAssertThrowsError(try S3Configuration.fromEnvironment(environment)) { error in
                guard case .invalidConfiguration(let text)? = error as? S3Error else { return XCTFail("\(error)") }
                XCTAssertTrue(text.contains(expected), text)
                XCTAssertFalse("\(error)".contains("s3cr3t"))
                XCTAssertFalse("\(error)".contains("pw"))
            }
        }
    }

    func testEndpoints() throws {
        let https = try S3Endpoint(parsing: "https://store.example:443/base/path/")
        XCTAssertEqual(https.hostHeader, "store.example")
        XCTAssertEqual(https.basePath, "/base/path")
        XCTAssertEqual(try S3Endpoint(parsing: "http://[::1]:9000").hostHeader, "[::1]:9000")
        XCTAssertEqual(try S3Endpoint(parsing: "http://host:80").origin, "http://host")
    }

    /// Path-style for a custom endpoint (with its base path), virtual-hosted for AWS; what is signed is what is sent.
    func testAddressing() throws {
        var environment = credentials
        environment["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9000/s3"
        let path = S3Client(configuration: try S3Configuration.fromEnvironment(environment))
        let request = S3Client.Request(
            operation: "GetObject", method: "GET", bucket: "bucket", key: "a b/c", query: [("versionId", "1/2")])
        let (url, headers) = try path.signedURLAndHeaders(request)
        XCTAssertEqual(url, "http://127.0.0.1:9000/s3/bucket/a%20b/c?versionId=1%2F2")
        XCTAssertEqual(headers.first { $0.name == "Host" }?.value, "127.0.0.1:9000")

        let aws = S3Client(configuration: try S3Configuration.fromEnvironment(credentials))
        let (awsURL, awsHeaders) = try aws.signedURLAndHeaders(request)
        XCTAssertEqual(awsURL, "https://bucket.s3.us-east-1.amazonaws.com/a%20b/c?versionId=1%2F2")
        XCTAssertEqual(awsHeaders.first { $0.name == "Host" }?.value, "bucket.s3.us-east-1.amazonaws.com")
        XCTAssertTrue(awsHeaders.first { $0.name == "Authorization" }!.value.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"))
    }

    func testXMLAnswers() throws {
        let listing = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
              <Contents><Key>a &amp; b &lt;c&gt; &#x00FC;</Key><Size>1</Size></Contents>
              <Contents><Key>  spaced  </Key><Size>2</Size></Contents>
            </ListBucketResult>
            """.utf8)
        let document = try XCTUnwrap(XMLElementNode.parse(listing))
        XCTAssertEqual(document.name, "ListBucketResult")
        XCTAssertEqual(document.children("Contents").compactMap { $0.value("Key") }, ["a & b <c> ü", "  spaced  "])
        XCTAssertNil(XMLElementNode.parse(Array("<unclosed>".utf8)))
        XCTAssertEqual(XMLWriter.escape("a&b<c>\"d'\r"), "a&amp;b&lt;c&gt;&quot;d&apos;&#13;")

        XCTAssertThrowsError(try S3Client.parse(
            Array("<Error><Code>InternalError</Code><Message>try\nagain</Message></Error>".utf8),
            root: "CompleteMultipartUploadResult", operation: "CompleteMultipartUpload")) {
            XCTAssertEqual("\($0)", "CompleteMultipartUpload failed: HTTP 200 InternalError: try again.")
        }
        XCTAssertThrowsError(try S3Client.parse(Array("<Other/>".utf8), root: "DeleteResult", operation: "DeleteObjects")) {
            guard case .invalidResponse? = $0 as? S3Error else { return XCTFail("\($0)") }
        }
    }

    func testRetryPolicyBackoff() {
        let policy = S3RetryPolicy(maxAttempts: 5, baseDelay: 0.2, maxDelay: 1)
        for attempt in 1...6 {
            let cap = min(1, 0.2 * pow(2, Double(attempt - 1)))
            let delay = policy.delay(afterAttempt: attempt)
            XCTAssertGreaterThanOrEqual(delay, cap / 2)
            XCTAssertLessThanOrEqual(delay, cap)
        }
        XCTAssertEqual(S3RetryPolicy(maxAttempts: 0).maxAttempts, 1)
    }
}
