import COpenSSL

/// ECDSA over P-256 with SHA-256 (FIPS 186-5), signatures DER-encoded (`ECDSA-Sig-Value`, at most 72 bytes), through
/// OpenSSL's `EVP_DigestSign`/`EVP_DigestVerify`: used for the vault's trust record and job signatures
/// (vault-format.md §3.9). Nonces come from OpenSSL's DRBG; verification accepts only what OpenSSL's strict DER
/// parser accepts.
public enum ECDSAP256 {
    public static let maxSignatureSize = 72

    /// Signs SHA-256(`message`) with `key`.
    public static func sign(_ message: [UInt8], with key: P256PrivateKey) throws -> [UInt8] {
        let pkey = try makeKey(privateKey: key)
        defer { EVP_PKEY_free(pkey) }
        let md = try checkOpenSSL(EVP_MD_CTX_new(), "EVP_MD_CTX_new")
        defer { EVP_MD_CTX_free(md) }
        try checkOpenSSL(EVP_DigestSignInit_ex(md, nil, "SHA256", nil, nil, pkey, nil), "EVP_DigestSignInit_ex")
        var length = maxSignatureSize
        var signature = [UInt8](repeating: 0, count: length)
        try message.withUnsafeBytes { m in
            try checkOpenSSL(EVP_DigestSign(md, &signature, &length, m.baseAddress?.assumingMemoryBound(to: UInt8.self), m.count),
                             "EVP_DigestSign")
        }
        return Array(signature.prefix(length))
    }

    /// Whether `signature` is a valid signature of SHA-256(`message`) by `publicKey`. Never throws for a bad signature.
    public static func verify(_ signature: [UInt8], message: [UInt8], publicKey: P256PublicKey) -> Bool {
        guard !signature.isEmpty, signature.count <= maxSignatureSize, let pkey = try? makeKey(publicKey: publicKey) else { return false }
        defer { EVP_PKEY_free(pkey) }
        guard let md = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestVerifyInit_ex(md, nil, "SHA256", nil, nil, pkey, nil) == 1 else { ERR_clear_error(); return false }
        let ok = message.withUnsafeBytes { m in
            EVP_DigestVerify(md, signature, signature.count, m.baseAddress?.assumingMemoryBound(to: UInt8.self), m.count)
        }
        ERR_clear_error()
        return ok == 1
    }

    // EVP_PKEY_PUBLIC_KEY and EVP_PKEY_KEYPAIR are macros Swift does not import.
    private static let publicSelection = Int32(OSSL_KEYMGMT_SELECT_ALL_PARAMETERS | OSSL_KEYMGMT_SELECT_PUBLIC_KEY)
    private static let keypairSelection = publicSelection | Int32(OSSL_KEYMGMT_SELECT_PRIVATE_KEY)

    private static func makeKey(privateKey: P256PrivateKey? = nil, publicKey: P256PublicKey? = nil) throws -> OpaquePointer {
        let ctx = try checkOpenSSL(EVP_PKEY_CTX_new_from_name(nil, "EC", nil), "EVP_PKEY_CTX_new_from_name")
        defer { EVP_PKEY_CTX_free(ctx) }
        try checkOpenSSL(EVP_PKEY_fromdata_init(ctx), "EVP_PKEY_fromdata_init")
        let pub = (privateKey?.publicKey ?? publicKey!).x963Representation
        var pkey: OpaquePointer?
        try pub.withUnsafeBytes { pubBytes in
            var entries: [(key: String, value: OSSLParamValue)] = [
                (OSSL_PKEY_PARAM_GROUP_NAME, .utf8("prime256v1")),
                (OSSL_PKEY_PARAM_PUB_KEY, .octets(pubBytes)),
            ]
            if let privateKey {
                let scalar = try privateKey.rawScalar()
                try scalar.withUnsafeBytes { d in
                    entries.append((OSSL_PKEY_PARAM_PRIV_KEY, .unsignedBigEndian(d)))
                    try withOSSLParams(entries) { params in
                        try checkOpenSSL(EVP_PKEY_fromdata(ctx, &pkey, keypairSelection, UnsafeMutablePointer(mutating: params)), "EVP_PKEY_fromdata")
                    }
                }
            } else {
                try withOSSLParams(entries) { params in
                    try checkOpenSSL(EVP_PKEY_fromdata(ctx, &pkey, publicSelection, UnsafeMutablePointer(mutating: params)), "EVP_PKEY_fromdata")
                }
            }
        }
        return try checkOpenSSL(pkey, "EVP_PKEY_fromdata")
    }
}

extension ECDSAP256 {
    /// Size of a fixed-width signature `r ‖ s` (IEEE P1363: two 32-byte big-endian integers).
    public static let rawSignatureSize = 64

    /// Signs SHA-256(`message`) with `key`, giving the fixed-width `r ‖ s` form (vault-format.md §3.10).
    public static func signRaw(_ message: [UInt8], with key: P256PrivateKey) throws -> [UInt8] {
        try derToRaw(try sign(message, with: key))
    }

    /// Whether the fixed-width signature `r ‖ s` is valid for `message` and `publicKey`. Never throws.
    public static func verifyRaw(_ signature: [UInt8], message: [UInt8], publicKey: P256PublicKey) -> Bool {
        guard signature.count == rawSignatureSize, let der = try? rawToDER(signature) else { return false }
        return verify(der, message: message, publicKey: publicKey)
    }

    /// DER `ECDSA-Sig-Value` → `r ‖ s` (each left-padded to 32 bytes).
    static func derToRaw(_ der: [UInt8]) throws -> [UInt8] {
        var cursor: UnsafePointer<UInt8>? = nil
        let sig: OpaquePointer = try der.withUnsafeBufferPointer { buffer in
            cursor = buffer.baseAddress
            return try checkOpenSSL(d2i_ECDSA_SIG(nil, &cursor, buffer.count), "d2i_ECDSA_SIG")
        }
        defer { ECDSA_SIG_free(sig) }
        var out = [UInt8](repeating: 0, count: rawSignatureSize)
        guard let r = ECDSA_SIG_get0_r(sig), let s = ECDSA_SIG_get0_s(sig) else { throw CryptoError.openSSL(function: "ECDSA_SIG_get0", detail: "no r or s") }
        try out.withUnsafeMutableBufferPointer { o in
            guard BN_bn2binpad(r, o.baseAddress!, 32) == 32, BN_bn2binpad(s, o.baseAddress! + 32, 32) == 32 else {
                throw CryptoError.openSSL(function: "BN_bn2binpad", detail: "r or s longer than 32 bytes")
            }
        }
        return out
    }

    /// `r ‖ s` → DER `ECDSA-Sig-Value`.
    static func rawToDER(_ raw: [UInt8]) throws -> [UInt8] {
        let sig = try checkOpenSSL(ECDSA_SIG_new(), "ECDSA_SIG_new")
        defer { ECDSA_SIG_free(sig) }
        let r = try raw.withUnsafeBufferPointer { try checkOpenSSL(BN_bin2bn($0.baseAddress!, 32, nil), "BN_bin2bn") }
        guard let s = raw.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress! + 32, 32, nil) }) else {
            BN_free(r)
            throw CryptoError.openSSL(function: "BN_bin2bn", detail: "allocation failed")
        }
        guard ECDSA_SIG_set0(sig, r, s) == 1 else {
            BN_free(r); BN_free(s)
            throw CryptoError.openSSL(function: "ECDSA_SIG_set0", detail: "failed")
        }
        let length = i2d_ECDSA_SIG(sig, nil)
        guard length > 0 else { throw CryptoError.openSSL(function: "i2d_ECDSA_SIG", detail: "failed") }
        var out = [UInt8](repeating: 0, count: Int(length))
        let written = out.withUnsafeMutableBufferPointer { o -> Int32 in
            var p: UnsafeMutablePointer<UInt8>? = o.baseAddress
            return i2d_ECDSA_SIG(sig, &p)
        }
        guard written == length else { throw CryptoError.openSSL(function: "i2d_ECDSA_SIG", detail: "length changed") }
        return out
    }
}
