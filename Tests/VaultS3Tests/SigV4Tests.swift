import Foundation
import VaultCrypto
import XCTest

@testable import VaultS3

/// SigV4 against the four worked examples of the Amazon S3 API Reference, "Signature Calculations for the
/// Authorization Header: Transferring Payload in a Single Chunk (AWS Signature Version 4)"
/// (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, section "Examples: Signature
/// Calculations"): access key AKIAIOSFODNN7EXAMPLE, secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, region
/// us-east-1, 20130524T000000Z, bucket examplebucket (virtual-hosted). Each example is checked at every published
/// step: canonical request, string to sign, signature and the whole Authorization header.
final class SigV4Tests: XCTestCase {
    private let signer = SigV4Signer(
        credentials: S3Credentials(
            accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    private let timestamp = "20130524T000000Z"
    private let host = "examplebucket.s3.amazonaws.com"
    private let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    private func check(
        _ request: SigV4Signer.Request, canonical: String, stringToSign: String, signature: String,
        signedHeaders: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let (text, names) = SigV4Signer.canonicalRequest(request)
        XCTAssertEqual(text, canonical, "canonical request", file: file, line: line)
        XCTAssertEqual(names, signedHeaders, file: file, line: line)
        let toSign = try SigV4Signer.stringToSign(
            canonicalRequest: text, timestamp: timestamp, scope: signer.credentialScope(day: "20130524"))
        XCTAssertEqual(toSign, stringToSign, "string to sign", file: file, line: line)
        XCTAssertEqual(try signer.signature(stringToSign: toSign, day: "20130524"), signature, file: file, line: line)
        XCTAssertEqual(
            try signer.authorization(request, timestamp: timestamp),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=\(signedHeaders),Signature=\(signature)", file: file, line: line)
    }

    /// "Example: GET Object": the first 10 bytes of test.txt.
    func testGetObjectExample() throws {
        try check(
            SigV4Signer.Request(
                method: "GET", path: "/test.txt", query: [],
                headers: [("Host", host), ("Range", "bytes=0-9"), ("x-amz-content-sha256", emptyHash),
                          ("x-amz-date", timestamp)],
                payloadHash: emptyHash),
            canonical: """
                GET
                /test.txt

                host:examplebucket.s3.amazonaws.com
                range:bytes=0-9
                x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                x-amz-date:20130524T000000Z

                host;range;x-amz-content-sha256;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """,
            stringToSign: """
                AWS4-HMAC-SHA256
                20130524T000000Z
                20130524/us-east-1/s3/aws4_request
                7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
                """,
            signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            signedHeaders: "host;range;x-amz-content-sha256;x-amz-date")
    }

    /// "Example: PUT Object": test$file.text with "Welcome to Amazon S3." and a storage class header (the key's
    /// `$` is percent-encoded in the canonical URI).
    func testPutObjectExample() throws {
        let payloadHash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        XCTAssertEqual(
            LowerHex.encode(try SHA256.hash(Array("Welcome to Amazon S3.".utf8))), payloadHash)
        try check(
            SigV4Signer.Request(
                method: "PUT", path: "/test$file.text", query: [],
                headers: [("Host", host), ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-date", timestamp),
                          ("x-amz-storage-class", "REDUCED_REDUNDANCY"), ("x-amz-content-sha256", payloadHash)],
                payloadHash: payloadHash),
            canonical: """
                PUT
                /test%24file.text

                date:Fri, 24 May 2013 00:00:00 GMT
                host:examplebucket.s3.amazonaws.com
                x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
                x-amz-date:20130524T000000Z
                x-amz-storage-class:REDUCED_REDUNDANCY

                date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class
                44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
                """,
            stringToSign: """
                AWS4-HMAC-SHA256
                20130524T000000Z
                20130524/us-east-1/s3/aws4_request
                9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d
                """,
            signature: "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            signedHeaders: "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class")
    }

    /// "Example: GET Bucket Lifecycle": a sub-resource without a value is signed as `lifecycle=`.
    func testGetBucketLifecycleExample() throws {
        try check(
            SigV4Signer.Request(
                method: "GET", path: "/", query: [("lifecycle", "")],
                headers: [("Host", host), ("x-amz-date", timestamp), ("x-amz-content-sha256", emptyHash)],
                payloadHash: emptyHash),
            canonical: """
                GET
                /
                lifecycle=
                host:examplebucket.s3.amazonaws.com
                x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                x-amz-date:20130524T000000Z

                host;x-amz-content-sha256;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """,
            stringToSign: """
                AWS4-HMAC-SHA256
                20130524T000000Z
                20130524/us-east-1/s3/aws4_request
                9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca
                """,
            signature: "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
            signedHeaders: "host;x-amz-content-sha256;x-amz-date")
    }

    /// "Example: Get Bucket (List Objects)": query parameters given out of order are sorted.
    func testListObjectsExample() throws {
        try check(
            SigV4Signer.Request(
                method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")],
                headers: [("Host", host), ("x-amz-date", timestamp), ("x-amz-content-sha256", emptyHash)],
                payloadHash: emptyHash),
            canonical: """
                GET
                /
                max-keys=2&prefix=J
                host:examplebucket.s3.amazonaws.com
                x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                x-amz-date:20130524T000000Z

                host;x-amz-content-sha256;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """,
            stringToSign: """
                AWS4-HMAC-SHA256
                20130524T000000Z
                20130524/us-east-1/s3/aws4_request
                df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7
                """,
            signature: "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
            signedHeaders: "host;x-amz-content-sha256;x-amz-date")
    }

    /// `signedRequest` adds x-amz-date and x-amz-content-sha256 itself and reproduces the GET Object example;
    /// the path and query it returns are the canonical ones.
    func testSignedRequestAddsDateAndPayloadHash() throws {
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
        XCTAssertEqual(SigV4Signer.timestamp(date), timestamp)
        let signed = try signer.signedRequest(
            SigV4Signer.Request(
                method: "GET", path: "/test.txt", query: [], headers: [("Host", host), ("Range", "bytes=0-9")],
                payloadHash: emptyHash),
            at: date)
        XCTAssertEqual(signed.pathAndQuery, "/test.txt")
        let authorization = signed.headers.first { $0.name == "Authorization" }?.value
        XCTAssertEqual(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        XCTAssertEqual(signed.headers.first { $0.name == "x-amz-date" }?.value, timestamp)
        XCTAssertEqual(signed.headers.first { $0.name == "x-amz-content-sha256" }?.value, emptyHash)
    }

    /// Keys and query values: every byte outside the unreserved set is encoded once, upper-case hex; `/` stays in
    /// paths and is encoded in query values; parameters sort by encoded name, then value.
    func testEncodingOfKeysAndQueries() {
        XCTAssertEqual(SigV4Signer.canonicalURI("/b/a b+c%d/ü?#&=~._-"), "/b/a%20b%2Bc%25d/%C3%BC%3F%23%26%3D~._-")
        XCTAssertEqual(SigV4Signer.canonicalURI(""), "/")
        XCTAssertEqual(
            SigV4Signer.canonicalQuery([("prefix", "a/b c"), ("uploads", ""), ("continuation-token", "x+y=")]),
            "continuation-token=x%2By%3D&prefix=a%2Fb%20c&uploads=")
        XCTAssertEqual(SigV4Signer.canonicalQuery([("a", "2"), ("a", "1"), ("A", "3")]), "A=3&a=1&a=2")
        XCTAssertEqual(PercentEncoding.decodeFormComponent("a+b%2Bc%2F%C3%BC"), "a b+c/ü")
        XCTAssertNil(PercentEncoding.decodeFormComponent("bad%2"))
        XCTAssertNil(PercentEncoding.decodeFormComponent("%FF"))
    }

    /// Credentials never print their secret.
    func testCredentialsDoNotPrintTheSecret() {
        let credentials = S3Credentials(accessKeyID: "AKID", secretAccessKey: "very-secret", sessionToken: "token-secret")
        for text in [credentials.description, credentials.debugDescription, "\(credentials)", String(reflecting: credentials)] {
            XCTAssertFalse(text.contains("very-secret"), text)
            XCTAssertFalse(text.contains("token-secret"), text)
            XCTAssertTrue(text.contains("AKID"), text)
        }
    }
}
