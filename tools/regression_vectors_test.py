#!/usr/bin/env python3
"""The regression vectors, checked by code that shares nothing with the writer (standard library only,
plus tools/independent-reader.py, which needs Python's `cryptography` package and the zstd tool).

    python3 tools/regression_vectors_test.py          # ~10 s

The known-answer bundles in samples/vectors/known-answer/ and the `expect: success` vectors in
samples/vectors/bad/ were sealed by ShredVault's own BundleWriter (VectorTests regenerates them), so a
Swift test that reopens them with BundleReader only shows that the code agrees with itself. Here every
one of them is decrypted by tools/independent-reader.py (written from vault-format.md alone), unpacked
with GNU tar, and compared with the committed source tree and manifest, file by file and byte by byte.
Every bad vector is also given to the independent reader: header and payload failures must be refused
by it too, and contents failures must decrypt (their encryption is valid; the reader's job ends there).
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
READER = os.path.join(HERE, "independent-reader.py")
KAT = os.path.join(REPO, "samples", "vectors", "known-answer")
BAD = os.path.join(REPO, "samples", "vectors", "bad")
# vault-format.md §7: the sources are committed with these modes and mtimes normalized by the writer's test.
FIXED_MTIME = 1795910400
KATS = ["tiny", "edge-cases", "empty"]
# expect: success vectors and the known-answer source each one was sealed from.
SUCCESS_SOURCES = {"success-tiny": "tiny", "success-edge-cases": "edge-cases", "success-empty-user": "empty"}


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def parse_vector(path):
    data = read(path)
    head, sep, body = data.partition(b"\n\n")
    assert sep, path
    fields = {}
    for line in head.decode("utf-8").split("\n"):
        k, _, v = line.partition(":")
        fields[k.strip()] = v.strip()
    return fields, body


def independent_read(bundle, key_hex, tmp):
    """Runs tools/independent-reader.py; returns (exit status, tar bytes, stderr)."""
    key = os.path.join(tmp, "key.hex")
    with open(key, "w") as f:
        f.write(key_hex + "\n")
    os.chmod(key, 0o600)
    p = subprocess.run([sys.executable, READER, bundle, key], capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def expected_tree(name):
    """{relpath: bytes or None (directory)} of a known-answer source as the writer's test seals it: git keeps
    no empty directory, so the `empty` user and edge-cases' `empty-dir` are added here as that test adds them."""
    root = os.path.join(KAT, name)
    out = {}
    if os.path.isdir(root):
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                out[os.path.relpath(os.path.join(dirpath, d), root)] = None
            for fn in filenames:
                p = os.path.join(dirpath, fn)
                out[os.path.relpath(p, root)] = read(p)
    if name == "edge-cases":
        out.setdefault("empty-dir", None)
    return out


def extracted_tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            out[os.path.relpath(p, root)] = read(p)
    return out


class RegressionVectorsTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="regression-vectors-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def key_hex(self):
        return read(os.path.join(KAT, "tiny.key"), "r").strip()

    def check_bundle(self, bundle, key_hex, name, label):
        status, tar, err = independent_read(bundle, key_hex, self.tmp)
        self.assertEqual(status, 0, "%s: the independent reader refused it: %s" % (label, err))
        out = os.path.join(self.tmp, "x-" + label)
        os.mkdir(out)
        t = subprocess.run(["tar", "-x", "--no-same-owner", "-C", out], input=tar, capture_output=True)
        self.assertEqual(t.returncode, 0, "%s: tar -x: %s" % (label, t.stderr.decode()))
        # Only files/… and the final manifest.json (vault-format.md §2.4).
        self.assertEqual(sorted(os.listdir(out)), ["files", "manifest.json"] if os.path.isdir(os.path.join(out, "files"))
                         else ["manifest.json"], label)
        manifest_bytes = read(os.path.join(out, "manifest.json"))
        self.assertEqual(manifest_bytes + b"\n", read(os.path.join(KAT, name + ".manifest.json")),
                         "%s: manifest differs from %s.manifest.json" % (label, name))
        tree = extracted_tree(os.path.join(out, "files")) if os.path.isdir(os.path.join(out, "files")) else {}
        self.assertEqual(tree, expected_tree(name), "%s: extracted tree differs from known-answer/%s" % (label, name))
        # The manifest, judged on its own: every entry's type, size, SHA-256, mode and mtime match the files.
        manifest = json.loads(manifest_bytes)
        self.assertEqual(manifest["format"], "shredvault-manifest/v1", label)
        self.assertEqual(manifest["bundleId"], read(bundle)[32:48].hex(), label)
        self.assertEqual(sorted(e["path"] for e in manifest["entries"]), sorted(tree), label)
        for e in manifest["entries"]:
            p = os.path.join(out, "files", e["path"])
            st = os.lstat(p)
            self.assertEqual(st.st_mode & 0o777, e["mode"], "%s: %s mode" % (label, e["path"]))
            self.assertEqual(int(st.st_mtime), e["mtime"], "%s: %s mtime" % (label, e["path"]))
            self.assertEqual(e["mtime"], FIXED_MTIME, label)
            if e["type"] == "file":
                data = read(p)
                self.assertEqual(len(data), e["size"], label)
                self.assertEqual(hashlib.sha256(data).hexdigest(), e["sha256"], "%s: %s" % (label, e["path"]))
            else:
                self.assertEqual(e["type"], "dir", label)
                self.assertTrue(os.path.isdir(p), label)
        return tree

    def test_known_answer_bundles(self):
        for name in KATS:
            with self.subTest(name):
                tree = self.check_bundle(os.path.join(KAT, name + ".svb"), self.key_hex(), name, name)
                if name != "empty":
                    self.assertTrue(any(v is not None for v in tree.values()), name)

    def test_success_vectors(self):
        for vector, name in SUCCESS_SOURCES.items():
            with self.subTest(vector):
                fields, body = parse_vector(os.path.join(BAD, vector + ".vector"))
                self.assertEqual(fields["expect"], "success", vector)
                self.assertEqual(fields.get("tree"), "known-answer/" + name, "%s names the tree it extracts to" % vector)
                path = os.path.join(self.tmp, vector + ".svb")
                with open(path, "wb") as f:
                    f.write(body)
                self.assertEqual(body, read(os.path.join(KAT, name + ".svb")),
                                 "%s is the known-answer bundle %s" % (vector, name))
                self.check_bundle(path, fields["key"], name, vector)

    def test_every_success_vector_is_covered(self):
        success = sorted(f[:-len(".vector")] for f in os.listdir(BAD)
                         if f.endswith(".vector") and parse_vector(os.path.join(BAD, f))[0]["expect"] == "success")
        self.assertEqual(success, sorted(SUCCESS_SOURCES))

    def test_bad_vectors_agree_with_the_independent_reader(self):
        counts = {}
        for f in sorted(os.listdir(BAD)):
            if not f.endswith(".vector"):
                continue
            fields, body = parse_vector(os.path.join(BAD, f))
            expect = fields["expect"]
            counts[expect] = counts.get(expect, 0) + 1
            path = os.path.join(self.tmp, f + ".svb")
            with open(path, "wb") as out:
                out.write(body)
            status, tar, err = independent_read(path, fields["key"], self.tmp)
            if expect in ("header failure", "payload failure"):
                self.assertNotEqual(status, 0, "%s (%s): the independent reader decrypted it" % (f, expect))
            else:
                self.assertEqual(status, 0, "%s (%s): validly encrypted, but the independent reader refused it: %s"
                                 % (f, expect, err))
                self.assertGreater(len(tar), 0, f)
        self.assertEqual(sum(counts.values()), 53, counts)
        self.assertEqual(counts, {"success": 3, "header failure": 20, "payload failure": 14, "contents failure": 16})


if __name__ == "__main__":
    unittest.main(verbosity=2)
