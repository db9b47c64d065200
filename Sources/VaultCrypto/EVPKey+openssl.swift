import COpenSSL

/// Owns one `EVP_PKEY` holding a P-256 key (a key pair, or only a public key).
final class EVPKey {
    fileprivate let key: OpaquePointer

    private init(taking key: OpaquePointer) { self.key = key }

    deinit { EVP_PKEY_free(key) }  // cleanses the private scalar

    /// The P-256 group name understood by the EC key manager.
    private static let groupName = "prime256v1"

    /// `EVP_PKEY_PUBLIC_KEY` and `EVP_PKEY_KEYPAIR`, spelled out because Swift does not import
    /// those composite macros.
    private static let selectPublicKey = Int32(
        OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS | OSSL_KEYMGMT_SELECT_OTHER_PARAMETERS | OSSL_KEYMGMT_SELECT_PUBLIC_KEY)
    private static let selectKeyPair = selectPublicKey | Int32(OSSL_KEYMGMT_SELECT_PRIVATE_KEY)

    /// A fresh random P-256 key pair.
    static func generateP256() throws -> EVPKey {
        let context = try PKeyContext(algorithm: "EC")
        try checkOpenSSL(EVP_PKEY_keygen_init(context.context), "EVP_PKEY_keygen_init")
        try checkOpenSSL(EVP_PKEY_CTX_set_group_name(context.context, groupName), "EVP_PKEY_CTX_set_group_name")
        var key: OpaquePointer?
        try checkOpenSSL(EVP_PKEY_generate(context.context, &key), "EVP_PKEY_generate")
        return EVPKey(taking: try checkOpenSSL(key, "EVP_PKEY_generate"))
    }

    /// A key pair from a 32-byte big-endian scalar the caller has range-checked (1 ≤ d < n).
    /// The public point d·G is computed here, since OpenSSL does not derive it on import.
    static func p256(privateScalar scalar: SecretBytes) throws -> EVPKey {
        let group = try checkOpenSSL(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1), "EC_GROUP_new_by_curve_name")
        defer { EC_GROUP_free(group) }
        let number = try checkOpenSSL(BN_secure_new(), "BN_secure_new")
        defer { BN_clear_free(number) }
        try scalar.withUnsafeBytes { bytes in
            _ = try checkOpenSSL(
                BN_bin2bn(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(bytes.count), number), "BN_bin2bn")
        }
        BN_set_flags(number, BN_FLG_CONSTTIME)
        let point = try checkOpenSSL(EC_POINT_new(group), "EC_POINT_new")
        defer { EC_POINT_free(point) }
        try checkOpenSSL(EC_POINT_mul(group, point, number, nil, nil, nil), "EC_POINT_mul")
        var publicKey = [UInt8](repeating: 0, count: P256PublicKey.x963Size)
        guard EC_POINT_point2oct(group, point, POINT_CONVERSION_UNCOMPRESSED, &publicKey, publicKey.count, nil)
            == publicKey.count
        else { throw CryptoError.openSSLFailure("EC_POINT_point2oct") }
        return try publicKey.withUnsafeBytes { publicBytes in
            try fromData(
                selection: selectKeyPair,
                [
                    (OSSL_PKEY_PARAM_GROUP_NAME, .utf8(groupName)),
                    (OSSL_PKEY_PARAM_PUB_KEY, .octets(publicBytes)),
                    (OSSL_PKEY_PARAM_PRIV_KEY, .bignum(number, byteCount: P256PrivateKey.scalarSize)),
                ])
        }
    }

    /// A public-only key from a point that `validateP256Point` accepted.
    static func p256(publicKey x963: [UInt8]) throws -> EVPKey {
        try x963.withUnsafeBytes { bytes in
            try fromData(
                selection: selectPublicKey,
                [(OSSL_PKEY_PARAM_GROUP_NAME, .utf8(groupName)), (OSSL_PKEY_PARAM_PUB_KEY, .octets(bytes))])
        }
    }

    private static func fromData(selection: Int32, _ entries: [(key: String, value: OSSLParamValue)]) throws -> EVPKey {
        let context = try PKeyContext(algorithm: "EC")
        try checkOpenSSL(EVP_PKEY_fromdata_init(context.context), "EVP_PKEY_fromdata_init")
        var key: OpaquePointer?
        try withOSSLParams(entries) { params in
            try checkOpenSSL(
                EVP_PKEY_fromdata(context.context, &key, selection, UnsafeMutablePointer(mutating: params)),
                "EVP_PKEY_fromdata")
        }
        return EVPKey(taking: try checkOpenSSL(key, "EVP_PKEY_fromdata"))
    }

    /// Checks an uncompressed SEC1 point explicitly: decodes it (coordinates below p), then
    /// requires it to be on the P-256 curve and not the point at infinity.
    static func validateP256Point(_ x963: [UInt8]) throws {
        let group = try checkOpenSSL(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1), "EC_GROUP_new_by_curve_name")
        defer { EC_GROUP_free(group) }
        let point = try checkOpenSSL(EC_POINT_new(group), "EC_POINT_new")
        defer { EC_POINT_free(point) }
        guard EC_POINT_oct2point(group, point, x963, x963.count, nil) == 1 else {
            ERR_clear_error()
            throw CryptoError.invalidPublicKey("the coordinates are out of range or the point is not on the P-256 curve")
        }
        guard EC_POINT_is_on_curve(group, point, nil) == 1 else {
            ERR_clear_error()
            throw CryptoError.invalidPublicKey("the point is not on the P-256 curve")
        }
        guard EC_POINT_is_at_infinity(group, point) == 0 else {
            throw CryptoError.invalidPublicKey("the point is the point at infinity")
        }
    }

    /// The uncompressed public point `04 ‖ X ‖ Y`.
    func p256PublicKeyBytes() throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: P256PublicKey.x963Size)
        var length = 0
        try checkOpenSSL(
            EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, &bytes, bytes.count, &length),
            "EVP_PKEY_get_octet_string_param")
        guard length == bytes.count, bytes[0] == 0x04 else {
            throw CryptoError.openSSL(function: "EVP_PKEY_get_octet_string_param", detail: "public key is not an uncompressed point")
        }
        return bytes
    }

    /// The private scalar, 32 bytes big-endian.
    func p256PrivateScalar() throws -> SecretBytes {
        var number: OpaquePointer?
        try checkOpenSSL(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &number), "EVP_PKEY_get_bn_param")
        defer { BN_clear_free(number) }
        let scalar = SecretBytes(count: P256PrivateKey.scalarSize)
        try scalar.withUnsafeMutableBytes { out in
            guard BN_bn2binpad(number, out.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(out.count)) == out.count else {
                throw CryptoError.openSSLFailure("BN_bn2binpad")
            }
        }
        return scalar
    }

    /// ECDH (`EVP_PKEY_derive`): the x-coordinate of our scalar times the peer's point.
    /// `EVP_PKEY_derive_set_peer` validates the peer key once more.
    func deriveSharedSecret(peer: EVPKey) throws -> SecretBytes {
        let context = try PKeyContext(key: self)
        try checkOpenSSL(EVP_PKEY_derive_init(context.context), "EVP_PKEY_derive_init")
        try checkOpenSSL(EVP_PKEY_derive_set_peer(context.context, peer.key), "EVP_PKEY_derive_set_peer")
        let secret = SecretBytes(count: P256PrivateKey.scalarSize)
        try secret.withUnsafeMutableBytes { out in
            var length = out.count
            try checkOpenSSL(
                EVP_PKEY_derive(context.context, out.baseAddress!.assumingMemoryBound(to: UInt8.self), &length),
                "EVP_PKEY_derive")
            guard length == out.count else {
                throw CryptoError.openSSL(function: "EVP_PKEY_derive", detail: "shared secret is \(length) bytes")
            }
        }
        return secret
    }
}

/// Owns one `EVP_PKEY_CTX` (key generation, import or derivation).
final class PKeyContext {
    let context: OpaquePointer

    init(algorithm: String) throws {
        context = try checkOpenSSL(EVP_PKEY_CTX_new_from_name(nil, algorithm, nil), "EVP_PKEY_CTX_new_from_name")
    }

    init(key: EVPKey) throws {
        context = try checkOpenSSL(EVP_PKEY_CTX_new_from_pkey(nil, key.key, nil), "EVP_PKEY_CTX_new_from_pkey")
    }

    deinit { EVP_PKEY_CTX_free(context) }
}
