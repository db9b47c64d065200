import VaultCrypto

/// An access key, its secret and an optional session token (temporary credentials).
///
/// The secret is held in `SecretBytes` and only ever used as HMAC key material; `description` shows the access key
/// ID alone, so credentials printed by mistake, or interpolated into an error, reveal no secret.
public struct S3Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The access key ID (`AWS_ACCESS_KEY_ID`): not secret, it names the key in every signed request.
    public let accessKeyID: String
    /// `"AWS4" + secret`: the key of SigV4's first HMAC (the only form the secret is needed in).
    let signingSeed: SecretBytes
    /// The session token of temporary credentials (`AWS_SESSION_TOKEN`), sent as `x-amz-security-token`.
    let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.signingSeed = SecretBytes(copying: Array("AWS4".utf8) + Array(secretAccessKey.utf8))
        self.sessionToken = sessionToken
    }

    public var description: String {
        "S3Credentials(accessKeyID: \(accessKeyID), secret: redacted\(sessionToken == nil ? "" : ", session token: redacted"))"
    }

    public var debugDescription: String { description }
}
