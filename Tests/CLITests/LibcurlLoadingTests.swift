import Foundation
import XCTest

/// libcurl is loaded at the first S3 request, not linked (issue 15: ~4 MiB resident and part of every start for
/// commands that never use it). Without it, S3 requests fail with one clear line and exit 14, and everything else
/// works. The test hides libcurl in a private mount namespace (`unshare -m` and a bind mount of an empty file over
/// it, as root, as CI runs).
final class LibcurlLoadingTests: XCTestCase {
    func testWithoutLibcurlOnlyS3RequestsFailAndTheyNameIt() throws {
        let dir = try temporaryDirectory(self)
        let empty = dir + "/empty"
        try write("", to: empty)
        // Where the dynamic loader finds libcurl.so.4 on this machine.
        let ldconfig = try CLI.execute("/sbin/ldconfig", ["-p"])
        guard let line = ldconfig.stdout.split(separator: "\n").first(where: { $0.contains("libcurl.so.4 (") }),
              let arrow = line.range(of: "=> ") else {
            return XCTFail("ldconfig -p lists no libcurl.so.4: \(ldconfig.stdout.prefix(300))")
        }
        let library = String(line[arrow.upperBound...]).trimmingCharacters(in: .whitespaces)
        let env = "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1"
        let script = """
            set -e
            mount --bind '\(empty)' '\(library)'
            \(env) '\(CLI.binary)' init --drill --now 2026-11-29T01:00:00Z --vault '\(dir)/s3' --master-key-file '\(dir)/s3.key' \
                --bundle-store s3://bucket/prefix 2>'\(dir)/s3.err' && echo "s3 init: 0" || echo "s3 init: $?"
            '\(CLI.binary)' init --drill --now 2026-11-29T01:00:00Z --vault '\(dir)/local' --master-key-file '\(dir)/local.key' \
                >/dev/null 2>'\(dir)/local.err' && echo "local init: 0" || echo "local init: $?"
            '\(CLI.binary)' status --vault '\(dir)/local' --now 2026-11-29T01:00:00Z >/dev/null && echo "status: 0" || echo "status: $?"
            """
        let r = try CLI.execute("/usr/bin/unshare", ["-m", "/bin/sh", "-c", script])
        XCTAssertEqual(r.status, 0, "unshare/mount: \(r.stderr)")
        XCTAssertTrue(r.stdout.contains("s3 init: 14"), r.stdout)
        let s3err = try String(contentsOfFile: dir + "/s3.err", encoding: .utf8)
        XCTAssertEqual(s3err.split(separator: "\n").count, 1, s3err)
        XCTAssertTrue(s3err.contains("cannot load libcurl") && s3err.contains("libcurl.so.4"), s3err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/s3"), "no vault is made when the store cannot be reached")
        let localErr = (try? String(contentsOfFile: dir + "/local.err", encoding: .utf8)) ?? ""
        XCTAssertTrue(r.stdout.contains("local init: 0"), r.stdout + localErr)
        XCTAssertTrue(r.stdout.contains("status: 0"), r.stdout)
        // Outside the namespace libcurl is where it was: nothing leaked.
        let size = (try FileManager.default.attributesOfItem(atPath: library)[.size] as? Int) ?? 0
        XCTAssertGreaterThan(size, 0)
    }
}
