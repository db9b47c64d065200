// swift-tools-version: 6.0
// ShredVault: encrypted archive vault with crypto-shredding. See vault-format.md.
import PackageDescription

let package = Package(
    name: "ShredVault",
    products: [
        .library(name: "ShredVault", targets: ["ShredVault"]),
        .library(name: "VaultS3", targets: ["VaultS3"]),
        .executable(name: "shredvault", targets: ["ShredVaultCLI"]),
        .executable(name: "shredvault-fuzz", targets: ["ShredVaultFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // Leveled job logs on stderr (text, JSON or journald priority prefixes): the CLI only.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // System libraries (Debian: libssl-dev, libarchive-dev, libzstd-dev, zlib1g-dev).
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The PKCS#11 header only (Debian: libp11-kit-dev); token modules are dlopen'ed at run time, never linked.
        .systemLibrary(name: "CPKCS11", pkgConfig: "p11-kit-1", providers: [.apt(["libp11-kit-dev"])]),
        // libcurl for the S3 client (Debian: libcurl4-openssl-dev for the header; libcurl4 at run time): shim.h loads
        // it with dlopen at the first S3 request (not linked, so other commands never map it) and wraps its variadic
        // setopt/getinfo.
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // The only importer of COpenSSL.
        .target(name: "CSHA256", dependencies: ["COpenSSL"]),
        .target(name: "VaultCrypto", dependencies: ["COpenSSL", "CSHA256"]),
        // The only importer of CArchive, CZstd and CZlib.
        .target(name: "VaultArchive", dependencies: ["CArchive", "CZstd", "CZlib"]),
        // The destruction root in a PKCS#11 token (SoftHSM2 in tests): the only importer of CPKCS11.
        .target(name: "VaultHSM", dependencies: ["CPKCS11", "VaultCrypto"]),
        // An S3 client (object storage, issue #13): SigV4 over VaultCrypto's HMAC-SHA-256, HTTP over libcurl.
        // The only importer of CCurl.
        .target(name: "VaultS3", dependencies: ["CCurl", "VaultCrypto"]),
        // Linux calls Swift's Glibc module lacks (renameat2).
        .target(name: "CPosix"),
        // The vault: no crypto or archive C imports; POSIX calls only in Storage/Syscalls.swift.
        .target(name: "ShredVault", dependencies: [
            "VaultCrypto", "VaultArchive", "CPosix", .product(name: "GRDB", package: "GRDB.swift"),
            // sqlite3_serialize/deserialize: keystore snapshots are built and restored in memory, never as plaintext files.
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            // The destruction root in a PKCS#11 token (vault-format.md §3.8).
            "VaultHSM",
            // Bundles and DEK sidecars as objects in an S3 bucket (vault-format.md §6.5).
            "VaultS3",
        ]),
        // Fuzz harness executable (tools/fuzz): replays inputs in normal builds; a libFuzzer binary when built with
        // -sanitize=fuzzer,address -DSHREDVAULT_LIBFUZZER. CFuzzDriver only declares libFuzzer's LLVMFuzzerRunDriver.
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "ShredVaultFuzz", dependencies: ["ShredVault", "CFuzzDriver"]),
        // The `shredvault` command-line tool.
        .executableTarget(
            name: "ShredVaultCLI",
            dependencies: ["ShredVault", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")]
        ),

        .testTarget(name: "VaultCryptoTests", dependencies: ["VaultCrypto", "VaultArchive"],
                    resources: [.copy("Vectors")]),
        .testTarget(name: "VaultArchiveTests", dependencies: ["VaultArchive"]),
        .testTarget(name: "ShredVaultTests", dependencies: ["ShredVault"]),
        .testTarget(name: "CLITests", dependencies: ["ShredVaultCLI"]),
        .testTarget(name: "VaultHSMTests", dependencies: ["VaultHSM", "VaultCrypto"]),
        // SigV4 known answers, and the client against a real object store (tools/object-store) each test starts.
        .testTarget(name: "VaultS3Tests", dependencies: ["VaultS3", "VaultCrypto"]),
        // A vault whose bundles are S3 objects (vault-format.md §6.5), against the same real object store;
        // LocalObjectStore.swift is VaultS3Tests' (a symbolic link).
        .testTarget(name: "BundleStoreTests", dependencies: ["ShredVault", "VaultS3", "VaultCrypto"]),
        // Replays the committed fuzz seeds (Tests/FuzzCorpus) through every FuzzTargets harness.
        .testTarget(name: "FuzzReplayTests", dependencies: ["ShredVault"]),
    ],
    swiftLanguageModes: [.v6]
)
