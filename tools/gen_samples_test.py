#!/usr/bin/env python3
"""Tests for tools/gen-samples (standard library only).

    python3 tools/gen_samples_test.py            # ~5 s
    GEN_SAMPLES_SLOW=1 python3 tools/gen_samples_test.py   # adds a 1000-user run (~15 s, ~450 MB in $TMPDIR)
"""

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "gen-samples")
REPO = os.path.dirname(HERE)
SAMPLE_DIR = os.path.join(REPO, "samples", "source")
SAMPLE_ARGS = ["--users", "12", "--seed", "7", "--median-kib", "24"]


def run(*args, env=None, check=True):
    p = subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, env=env)
    if check and p.returncode != 0:
        raise AssertionError("gen-samples %s failed (%d): %s" % (args, p.returncode, p.stderr.decode()))
    return p


def tree(root, skip=("README.md",), meta=True):
    """{relpath: (kind, mode, size, mtime, sha256)} for everything under root.

    meta=False keeps only (kind, size, sha256) and only directories with a file below them: what git
    preserves.
    """
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if rel in skip:
                continue
            st = os.lstat(p)
            digest = None
            if not os.path.isdir(p):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            kind = "d" if os.path.isdir(p) else "f"
            size = st.st_size if digest else 0
            out[rel] = (kind, oct(st.st_mode & 0o7777), size, int(st.st_mtime), digest) if meta else \
                (kind, size, digest)
    if meta:
        out["."] = ("d", oct(os.stat(root).st_mode & 0o7777), 0, int(os.stat(root).st_mtime), None)
    else:
        # git keeps no empty directory (a user whose export is an empty directory): drop directories
        # without a file below them.
        files = [rel for rel, v in out.items() if v[0] == "f"]
        out = {rel: v for rel, v in out.items()
               if v[0] == "f" or any(f.startswith(rel + os.sep) for f in files)}
    return out


class GenSamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gen-samples-test-")
        cls.a = os.path.join(cls.tmp.name, "a")
        p = run("--out", cls.a, "--json", *SAMPLE_ARGS)
        cls.summary = json.loads(p.stdout)
        with open(os.path.join(cls.a, "accounts.csv"), newline="", encoding="utf-8") as f:
            cls.rows = list(csv.reader(f))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_help(self):
        p = run("--help")
        text = p.stdout.decode()
        for word in ("accounts.csv", "users/<user_id>", "--huge-user-bytes", "empty-dir", "no-dir",
                     "Determinism", "examples:"):
            self.assertIn(word, text)

    def test_bad_arguments_exit_2(self):
        for args in (["--out", "x", "--users", "-1"], ["--out", "x", "--today", "2026-13-01"],
                     ["--out", "x", "--huge-user-bytes", "12XB"], ["--out", "x", "--huge-user-bytes", "1000"],
                     ["--users", "3"]):
            self.assertEqual(run(*args, check=False).returncode, 2, args)

    def test_deterministic_across_umask_and_hash_seed(self):
        b = os.path.join(self.tmp.name, "b")
        env = dict(os.environ, PYTHONHASHSEED="12345")
        old = os.umask(0o077)
        try:
            run("--out", b, "--quiet", *SAMPLE_ARGS, env=env)
        finally:
            os.umask(old)
        self.assertEqual(tree(self.a), tree(b))

    def test_other_seed_differs(self):
        c = os.path.join(self.tmp.name, "c")
        run("--out", c, "--quiet", "--users", "12", "--seed", "8", "--median-kib", "24")
        self.assertNotEqual(tree(self.a), tree(c))

    def test_accounts_csv(self):
        self.assertEqual(self.rows[0], ["user_id", "email", "plan", "country", "signup_date", "last_active"])
        ids = [r[0] for r in self.rows[1:]]
        self.assertEqual(len(ids), 12)
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), len(ids))
        for r in self.rows[1:]:
            self.assertRegex(r[0], r"^u[0-9]{7}$")
            self.assertRegex(r[4], r"^\d{4}-\d{2}-\d{2}$")
            self.assertRegex(r[5], r"^\d{4}-\d{2}-\d{2}$")
            self.assertLessEqual(r[4], r[5])
        with open(os.path.join(self.a, "accounts.csv"), "rb") as f:
            self.assertNotIn(b"\r", f.read())
        dirs = sorted(os.listdir(os.path.join(self.a, "users")))
        self.assertTrue(set(dirs) <= set(ids))

    def test_activity_mix(self):
        import datetime
        today = datetime.date(2026, 11, 29)
        idle = [(today - datetime.date.fromisoformat(r[5])).days for r in self.rows[1:]]
        self.assertGreaterEqual(sum(d > 365 for d in idle), 3)
        self.assertGreaterEqual(sum(d < 365 for d in idle), 2)
        self.assertIn(365, idle)
        s = self.summary
        self.assertEqual(s["inactive"], sum(d > 365 for d in idle))
        self.assertEqual(s["active"], sum(d < 365 for d in idle))
        self.assertEqual(s["boundary_365"], idle.count(365))

    def test_summary_matches_disk(self):
        files = sizes = 0
        for dirpath, _, names in os.walk(os.path.join(self.a, "users")):
            for n in names:
                files += 1
                sizes += os.path.getsize(os.path.join(dirpath, n))
        self.assertEqual(self.summary["files"], files)
        self.assertEqual(self.summary["total_bytes"], sizes)
        self.assertEqual(self.summary["user_dirs"], len(os.listdir(os.path.join(self.a, "users"))))
        self.assertLess(sizes, 1_000_000)

    def test_edge_cases(self):
        e = self.summary["edge_cases"]
        users = os.path.join(self.a, "users")
        self.assertEqual(os.listdir(os.path.join(users, e["empty-dir"])), [])
        self.assertFalse(os.path.lexists(os.path.join(users, e["no-dir"])))
        self.assertIn(e["no-dir"], [r[0] for r in self.rows])
        self.assertEqual(os.path.getsize(os.path.join(users, e["empty-file"], "attachments", "empty.bin")), 0)
        for n in (16384, 32768):
            p = os.path.join(users, e["exact-chunk-sizes"], "attachments", "exact-%d.bin" % n)
            self.assertEqual(os.path.getsize(p), n)
        names = os.listdir(os.fsencode(os.path.join(users, e["unicode-path"], "messages")))
        self.assertIn("données-日本語 ✓.txt".encode("utf-8"), names)
        longest = 0
        for dirpath, _, fnames in os.walk(os.path.join(users, e["long-path"])):
            for n in fnames:
                rel = os.path.relpath(os.path.join(dirpath, n), os.path.join(users, e["long-path"]))
                longest = max(longest, len(rel.encode()))
        self.assertGreater(longest, 255)

    def test_file_formats(self):
        users = os.path.join(self.a, "users")
        seen = set()
        for dirpath, _, names in os.walk(users):
            for n in names:
                p = os.path.join(dirpath, n)
                self.assertEqual(os.stat(p).st_mode & 0o777, 0o644)
                if n.endswith(".json"):
                    with open(p, encoding="utf-8") as f:
                        json.load(f)
                    seen.add(n)
                elif n.endswith(".jsonl"):
                    with open(p, encoding="utf-8") as f:
                        prev = ""
                        for line in f:
                            ev = json.loads(line)
                            self.assertEqual(list(ev), ["ts", "event", "ip", "user_agent", "os", "referrer",
                                                        "session_id"])
                            self.assertGreaterEqual(ev["ts"], prev)
                            prev = ev["ts"]
                    seen.add(n)
                elif n.endswith(".wav"):
                    with wave.open(p) as w:
                        self.assertEqual((w.getnchannels(), w.getsampwidth(), w.getframerate()), (1, 2, 8000))
                        self.assertEqual(44 + 2 * w.getnframes(), os.path.getsize(p))
                    seen.add(n)
                elif n == "invoices.csv":
                    with open(p, encoding="utf-8") as f:
                        self.assertTrue(f.readline().startswith("invoice_id,"))
                    seen.add(n)
                elif n == "transcript.txt":
                    with open(p, encoding="utf-8") as f:
                        self.assertRegex(f.read(), r"\[\d\d:\d\d:\d\d\] (AGENT|CALLER): ")
                    seen.add(n)
        for n in ("profile.json", "cookies.json", "events.jsonl", "recording.wav", "invoices.csv",
                  "transcript.txt"):
            self.assertIn(n, seen)
        for dirpath, dirnames, _ in os.walk(users):
            for d in dirnames:
                self.assertEqual(os.stat(os.path.join(dirpath, d)).st_mode & 0o777, 0o755)

    def test_mtimes_from_last_active(self):
        import datetime
        users = os.path.join(self.a, "users")
        last = {r[0]: datetime.date.fromisoformat(r[5]) for r in self.rows[1:]}
        for uid in os.listdir(users):
            for dirpath, _, names in os.walk(os.path.join(users, uid)):
                for n in names:
                    t = os.stat(os.path.join(dirpath, n)).st_mtime
                    day = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).date()
                    self.assertEqual(day, last[uid], (uid, n))

    def test_out_exists_and_force(self):
        d = os.path.join(self.tmp.name, "f")
        run("--out", d, "--quiet", "--users", "2")
        p = run("--out", d, "--users", "2", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"already exists", p.stderr)
        before = tree(d)
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write("keep me\n")
        run("--out", d, "--quiet", "--users", "2", "--force")
        self.assertEqual(before, tree(d))
        with open(os.path.join(d, "README.md")) as f:
            self.assertEqual(f.read(), "keep me\n")
        with open(os.path.join(d, "precious.txt"), "w") as f:
            f.write("x")
        p = run("--out", d, "--users", "2", "--force", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"does not look like gen-samples output", p.stderr)
        self.assertTrue(os.path.exists(os.path.join(d, "accounts.csv")))

    def test_huge_user_exact_size(self):
        d = os.path.join(self.tmp.name, "h")
        n = 3 * 1024 * 1024 + 7
        s = json.loads(run("--out", d, "--json", "--users", "3", "--huge-user-bytes", str(n)).stdout)
        self.assertEqual(s["huge_user"], {"user_id": "u9999999", "bytes": n})
        total = 0
        wavs = 0
        for dirpath, _, names in os.walk(os.path.join(d, "users", "u9999999")):
            for name in names:
                p = os.path.join(dirpath, name)
                total += os.path.getsize(p)
                if name.endswith(".wav"):
                    wavs += os.path.getsize(p)
                    with wave.open(p) as w:
                        self.assertEqual(44 + 2 * w.getnframes(), os.path.getsize(p))
        self.assertEqual(total, n)
        self.assertGreater(wavs, n // 2)
        with open(os.path.join(d, "accounts.csv")) as f:
            self.assertTrue(f.read().splitlines()[-1].startswith("u9999999,"))
        d2 = os.path.join(self.tmp.name, "h2")
        run("--out", d2, "--quiet", "--users", "3", "--huge-user-bytes", str(n))
        self.assertEqual(tree(d), tree(d2))

    def test_committed_sample_is_current(self):
        if not os.path.isdir(SAMPLE_DIR):
            self.skipTest("samples/source not present")
        self.assertEqual(tree(self.a, meta=False), tree(SAMPLE_DIR, meta=False),
                         "samples/source differs from `tools/gen-samples --out samples/source %s --force`"
                         % " ".join(SAMPLE_ARGS))

    @unittest.skipUnless(os.environ.get("GEN_SAMPLES_SLOW"), "set GEN_SAMPLES_SLOW=1")
    def test_default_1000_users(self):
        d = os.path.join(self.tmp.name, "big")
        s = json.loads(run("--out", d, "--json").stdout)
        self.assertEqual(s["users"], 1000)
        self.assertTrue(300e6 <= s["total_bytes"] <= 600e6, s["total_bytes"])
        self.assertTrue(0.6 <= s["inactive"] / s["users"] <= 0.8, s["inactive"])


class CallsProfileTest(unittest.TestCase):
    """--profile calls: the call-recording corpus tools/bench uses by default."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gen-samples-calls-")
        cls.a = os.path.join(cls.tmp.name, "a")
        cls.summary = json.loads(run("--out", cls.a, "--json", "--profile", "calls", "--users", "24", "--seed", "5",
                                     "--median-kib", "1024").stdout)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def recordings(self):
        out = {}
        for dirpath, _, names in os.walk(os.path.join(self.a, "users")):
            for name in names:
                if name.startswith("recording."):
                    out.setdefault(name.split(".")[1], []).append(os.path.join(dirpath, name))
        return out

    def test_deterministic(self):
        b = os.path.join(self.tmp.name, "b")
        run("--out", b, "--quiet", "--profile", "calls", "--users", "24", "--seed", "5", "--median-kib", "1024")
        self.assertEqual(tree(self.a), tree(b))
        c = os.path.join(self.tmp.name, "c")
        run("--out", c, "--quiet", "--profile", "calls", "--users", "24", "--seed", "6", "--median-kib", "1024")
        self.assertNotEqual(tree(self.a), tree(c))

    def test_formats_and_metadata(self):
        self.assertEqual(self.summary["profile"], "calls")
        recs = self.recordings()
        self.assertTrue({"wav", "opus", "mp3", "m4a"} <= set(recs), sorted(recs))
        rates = set()
        for p in recs["wav"]:
            with wave.open(p) as w:
                self.assertEqual((w.getnchannels(), w.getsampwidth()), (1, 2))
                rates.add(w.getframerate())
                self.assertEqual(44 + 2 * w.getnframes(), os.path.getsize(p))
        self.assertTrue(rates <= {8000, 16000})
        for p in recs["mp3"][:3]:
            with open(p, "rb") as f:
                data = f.read()
            self.assertTrue(data.startswith(b"ID3"))
            self.assertGreater(data.count(b"\xff\xfb\x90\x64"), len(data) // 417 - 2)
        for p in recs["opus"][:3]:
            with open(p, "rb") as f:
                self.assertIn(b"OpusHead", f.read(64))
        # every call directory has its meta.json, and calls/index.csv lists every recording with its size
        for user in os.listdir(os.path.join(self.a, "users")):
            index = os.path.join(self.a, "users", user, "calls", "index.csv")
            if not os.path.exists(index):
                continue
            with open(index, newline="") as f:
                rows = list(csv.DictReader(f))
            for r in rows:
                d = os.path.join(os.path.dirname(index), r["call_id"])
                self.assertEqual(os.path.getsize(os.path.join(d, r["file"])), int(r["bytes"]))
                with open(os.path.join(d, "meta.json")) as f:
                    self.assertEqual(json.load(f)["call_id"], r["call_id"])

    def test_compressibility(self):
        """WAV shrinks by a third at best, compressed audio not at all (zlib as a stand-in for zstd)."""
        import zlib
        recs = self.recordings()
        def ratio(paths):
            raw = comp = 0
            for p in paths[:8]:
                with open(p, "rb") as f:
                    data = f.read()
                raw += len(data)
                comp += len(zlib.compress(data, 6))
            return comp / raw
        self.assertTrue(0.67 <= ratio(recs["wav"]) <= 0.95, ratio(recs["wav"]))
        for fmt in ("opus", "mp3", "m4a"):
            self.assertGreater(ratio(recs[fmt]), 0.99, fmt)

    def test_long_tail_and_counts(self):
        sizes = []
        for user in os.listdir(os.path.join(self.a, "users")):
            total = 0
            for dirpath, _, names in os.walk(os.path.join(self.a, "users", user)):
                total += sum(os.path.getsize(os.path.join(dirpath, n)) for n in names)
            sizes.append(total)
        sizes.sort()
        self.assertGreater(sizes[-1], 8 * sizes[len(sizes) // 2])  # long tail

    def test_huge_user_exact(self):
        d = os.path.join(self.tmp.name, "h")
        n = 24 * 1024 * 1024 + 3
        run("--out", d, "--quiet", "--profile", "calls", "--users", "0", "--huge-user-bytes", str(n))
        total = 0
        kinds = set()
        for dirpath, _, names in os.walk(os.path.join(d, "users", "u9999999")):
            for name in names:
                total += os.path.getsize(os.path.join(dirpath, name))
                kinds.add(name.rsplit(".", 1)[-1])
        self.assertEqual(total, n)
        self.assertIn("wav", kinds)


if __name__ == "__main__":
    unittest.main(verbosity=2)
