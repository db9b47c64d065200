"""bench --object-store: shredvault's archive and restore on an S3 bundle store against restic on the same store.

Run as `tools/bench --object-store [options]` (issue 13). Python 3 standard library only; shares bench_lib with
tools/bench. What a run does, in order:

 1. setup    installs restic, GNU time and diffutils when missing (apt-get, as root), builds shredvault (release,
             .build-bench) unless --bin is given, and starts a fresh local object store (tools/object-store start:
             OpenStack Swift with s3api on 127.0.0.1) in the scratch directory; it is stopped by PID at the end
             (tools/object-store stop), whatever happens. Both tools reach it through one stunnel TLS front on
             another loopback port (restic 0.14 signs plain-http uploads with aws-chunked payloads, which this
             store refuses; over https it does not), so both pay the same TLS hop. The credentials go to the children's environment only
             (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never to argv or the report.
 2. ceiling  the store's own speed, to know what any client can reach: one object of --ceiling-bytes of random data
             PUT and then GET by a minimal SigV4 client in this script (http.client, UNSIGNED-PAYLOAD), one
             stream, then 4 ranged GETs of it in parallel; and 150 objects of 256 KiB, PUT then GET, 6 in flight
             (requests per second: with 2 PUTs and 2 GETs per user, the floor of any one-object-per-user archive).
 3. corpus   tools/gen-samples --users N; the users `shredvault archive --dry-run` selects are every tool's
             workload. --reps repetitions, tool order rotated, a fresh bucket per tool and repetition:
               shredvault  init --bundle-store s3://BUCKET/vault (untimed), archive --keep-source (timed), one
                           `hold place --all` (untimed), restore --all-held --to DIR (timed)
               restic      init -r s3:http://127.0.0.1:PORT/BUCKET (untimed), backup --files-from LIST (timed),
                           restore latest --target DIR (timed)
             Each timed command runs under GNU time (peak RSS, %M); the store's CPU seconds (its processes'
             /proc/PID/stat utime+stime) are recorded per command. Every restored tree is checked: exactly the
             workload's user directories, and a sample (--verify-sample) identical to the source (diff -r).
 4. big user one user of --huge-bytes (default 2 GiB) in a source of its own, both tools, --huge-reps repetitions
             with the order rotated; wall, MB/s and peak RSS; restored trees compared with diff -r.
 5. report   a markdown table on stdout and in --md-out, every measurement in --json-out. Ratios are of medians
             measured side by side in the same run (the machine may be shared: loadavg is recorded).

Targets (issue 13): archive >= 2x restic backup, restore >= 2x restic restore (corpus), peak RSS < 128 MiB for the
2 GiB user in both directions.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_lib import (  # noqa: E402
    GNU_TIME, REPO, BenchError, build_shredvault, compare_trees, ensure_peers, first_line, gen_corpus, git_provenance,
    human_bytes, loadavg, log, machine_info, parse_size, read_rss, rm, run, scan_users, tail, timed_sync,
    warm_and_measure_cache,
)

NOW = "2026-11-29T01:00:00Z"
CASE = "BENCH-S3"
PASSWORD = "bench-not-a-secret"
MB = 1e6
OBJECT_STORE = os.path.join(REPO, "tools", "object-store")
REQUIRED = {"restic": "restic", GNU_TIME: "time", "diff": "diffutils", "stunnel": "stunnel4", "openssl": "openssl"}
OPTIONAL = {"fincore": "util-linux"}
TOOLS = ("shredvault", "restic")
SMALL_OBJECT_BYTES = 256 << 10  # about a small user's bundle
SMALL_OBJECTS = 150
SMALL_THREADS = 6  # as many as an archive commit uploads at once
TARGETS = {  # name: (description, comparison, threshold)
    "archive_vs_restic": ("archive >= 2x restic backup (same object store)", ">=", 2.0),
    "restore_vs_restic": ("restore >= 2x restic restore (same object store)", ">=", 2.0),
    "huge_archive_vs_restic": ("big user: archive >= 2x restic backup", ">=", 2.0),
    "huge_restore_vs_restic": ("big user: restore >= 2x restic restore", ">=", 2.0),
    "huge_archive_rss": ("peak RSS archive of the big user < 128 MiB", "<", 128.0),
    "huge_restore_rss": ("peak RSS restore of the big user < 128 MiB", "<", 128.0),
}

EPILOG = """\
examples:
  tools/bench --object-store                                   # 1000 users, 3 reps, 2 GiB user
  tools/bench --object-store --users 200 --reps 1 --huge-bytes 256MiB   # smoke run
  tools/bench --object-store --bin .build-bench/release/shredvault --json-out /tmp/s3.json --md-out /tmp/s3.md

exit status: 0 every command succeeded and restored trees match (missed targets are reported; with --strict they
exit 3); 1 a command failed, a restored tree differs or the store could not start; 2 bad command line.
"""


class Store:
    """The local object store of this run (tools/object-store), started in `directory` and stopped by PID."""

    def __init__(self, directory):
        self.directory = directory
        run([OBJECT_STORE, "start", directory], "tools/object-store start")
        self.started = True
        self.env = {}
        for line in run([OBJECT_STORE, "env", directory], "tools/object-store env").splitlines():
            name, _, value = line.partition("=")
            if name.startswith("AWS_"):
                self.env[name] = value
        self.endpoint = self.env["AWS_ENDPOINT_URL"].rstrip("/")
        self.pids = []
        with open(os.path.join(directory, "pids")) as f:
            for line in f:
                if line.strip():
                    self.pids.append(int(line.split()[0]))

    def bucket(self, name):
        run([OBJECT_STORE, "bucket", self.directory, name], f"tools/object-store bucket {name}")
        return name

    def cpu_seconds(self):
        """CPU seconds (user + system) the store's processes have used so far."""
        hz = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return total / hz

    def stop(self):
        if self.started:
            self.started = False
            subprocess.run([OBJECT_STORE, "stop", self.directory], capture_output=True)


class TLSFront:
    """stunnel (Debian stunnel4) on a loopback port in front of the store, with a self-signed certificate for
    127.0.0.1. restic 0.14's S3 library signs uploads over plain http with aws-chunked streaming payloads, which this
    store rejects ("Transfering payloads in multiple chunks using aws-chunked is not supported"); over https it sends
    UNSIGNED-PAYLOAD, which the store accepts. Both tools go through this same front, so both pay the same TLS
    and proxy hop. Started with its PID kept, stopped by that PID."""

    def __init__(self, work, backend_url):
        self.dir = os.path.join(work, "tls")
        os.makedirs(self.dir)
        self.cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", self.cert],
            "openssl req (TLS front certificate)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        backend = urllib.parse.urlsplit(backend_url)
        conf = os.path.join(self.dir, "stunnel.conf")
        with open(conf, "w") as f:
            f.write(f"foreground = yes\npid =\nsyslog = no\noutput = {self.dir}/stunnel.log\n[s3]\n"
                    f"accept = 127.0.0.1:{self.port}\nconnect = {backend.hostname}:{backend.port}\n"
                    f"cert = {self.cert}\nkey = {key}\n")
        self.proc = subprocess.Popen(["stunnel", conf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(100):
            if self.proc.poll() is not None:
                raise BenchError(f"stunnel exited at start-up: {tail(os.path.join(self.dir, 'stunnel.log'))}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise BenchError("stunnel did not listen within 10 s")
        self.endpoint = f"https://127.0.0.1:{self.port}"
        banner = subprocess.run(["stunnel", "-version"], capture_output=True, text=True).stderr.splitlines()
        self.version = next((ln.split()[0] + " " + ln.split()[1] for ln in banner if ln.startswith("stunnel ")), "stunnel")

    def cpu_seconds(self):
        hz = os.sysconf("SC_CLK_TCK")
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / hz
        except (OSError, IndexError, ValueError):
            return 0.0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class S3Bench:
    def __init__(self, args, binary, work, store, front):
        self.args, self.binary, self.work, self.store, self.front = args, binary, work, store, front
        self.errlog = os.path.join(work, "stderr.log")
        self.rss_dir = os.path.join(work, "rss")
        os.makedirs(self.rss_dir, exist_ok=True)
        self.buckets = 0

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHREDVAULT_", "AWS_", "RESTIC_"))}
        env.update(self.store.env)
        env.update(AWS_ENDPOINT_URL=self.front.endpoint, AWS_CA_BUNDLE=self.front.cert)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def restic_env(self, cache):
        return self.env(RESTIC_PASSWORD=PASSWORD, RESTIC_CACHE_DIR=cache)

    def new_bucket(self, tool):
        self.buckets += 1
        return self.store.bucket(f"bench-{tool}-{self.buckets}")

    def sh(self, cmd, what, env=None, cwd=None, stdout=None, rss=False):
        """Runs one command (stderr to the log); raises BenchError on failure. Returns (stdout text, peak RSS KiB)."""
        rss_path = os.path.join(self.rss_dir, "last.txt")
        if rss:
            cmd = [GNU_TIME, "-f", "%M", "-o", rss_path, *cmd]
        with open(self.errlog, "ab") as err:
            err.write(f"\n$ {' '.join(cmd[:14])}\n".encode())
            err.flush()
            p = subprocess.run(cmd, cwd=cwd, env=env or self.env(), stdin=subprocess.DEVNULL,
                               stdout=stdout if stdout is not None else subprocess.PIPE, stderr=err)
        if p.returncode != 0:
            raise BenchError(f"{what} failed (exit {p.returncode}): {' '.join(cmd[:14])}\n{tail(self.errlog)}")
        return (p.stdout.decode() if stdout is None else ""), (read_rss(rss_path) if rss else None)

    def timed(self, cmd, what, nbytes, **kw):
        """One timed command: sync before and after (untimed), wall seconds, MB/s, peak RSS, the store's CPU."""
        pre = timed_sync()
        load = loadavg()
        store0, front0 = self.store.cpu_seconds(), self.front.cpu_seconds()
        t0 = time.perf_counter()
        out, rss = self.sh(cmd, what, rss=True, **kw)
        wall = time.perf_counter() - t0
        store_cpu = self.store.cpu_seconds() - store0
        m = {"wall_s": round(wall, 3), "mb_s": round(nbytes / wall / MB, 2), "peak_rss_kib": rss,
             "store_cpu_s": round(store_cpu, 2), "tls_front_cpu_s": round(self.front.cpu_seconds() - front0, 2), "pre_sync_s": pre, "post_sync_s": timed_sync(), "loadavg_before": load}
        log(f"{what:28s} {wall:8.2f} s {m['mb_s']:8.1f} MB/s  peak RSS {rss / 1024:6.1f} MiB  store CPU {store_cpu:6.1f} s")
        return m, out

    # -- the two tools

    def shredvault(self, corpus, workload, nbytes, label, restore_users=None):
        root = os.path.join(self.work, f"sv-{label}")
        os.makedirs(root)
        vault, key = os.path.join(root, "vault"), os.path.join(root, "restore.key")
        bucket = self.new_bucket("sv")
        self.sh([self.binary, "init", "--drill", "--vault", vault, "--master-key-file", key, "--now", self.args.now,
                 "--bundle-store", f"s3://{bucket}/vault"], "shredvault init")
        arch, out = self.timed([self.binary, "archive", "--vault", vault, "--source", corpus, "--keep-source",
                                "--now", self.args.now, "--json"], f"shredvault archive ({label})", nbytes)
        rep = json.loads(out)
        if rep.get("failed"):
            raise BenchError(f"shredvault archive reported failures: {rep['failed'][:3]}")
        got = {a["user"] for a in rep["archived"]}
        if got != set(workload["users"]):
            raise BenchError(f"shredvault archived {len(got)} users, the dry run selected {len(workload['users'])}")
        self.sh([self.binary, "hold", "place", "--all", "--vault", vault, "--master-key-file", key, "--now",
                 self.args.now, "--case", CASE, "--reason", "benchmark"], "shredvault hold place --all")
        target = os.path.join(root, "restored")
        rest, _ = self.timed([self.binary, "restore", "--all-held", "--vault", vault, "--master-key-file", key,
                              "--now", self.args.now, "--case", CASE, "--to", target],
                             f"shredvault restore ({label})", nbytes, stdout=subprocess.DEVNULL)
        self.verify("shredvault", target, corpus, workload)
        rm(root)
        return arch, rest

    def restic(self, corpus, workload, nbytes, label):
        root = os.path.join(self.work, f"restic-{label}")
        os.makedirs(root)
        repo = f"s3:{self.front.endpoint}/{self.new_bucket('restic')}"
        env = self.restic_env(os.path.join(root, "cache"))
        tls = ["--cacert", self.front.cert]
        self.sh(["restic", "init", "-q", "-r", repo, *tls], "restic init", env=env)
        arch, _ = self.timed(["restic", "-r", repo, "backup", "-q", *tls, "--host", "bench", "--files-from",
                              workload["listfile"]], f"restic backup ({label})", nbytes, env=env, cwd=corpus)
        target = os.path.join(root, "restored")
        rest, _ = self.timed(["restic", "-r", repo, "restore", "latest", "-q", *tls, "--target", target],
                             f"restic restore ({label})", nbytes, env=env)
        self.verify("restic", os.path.join(target, "users"), corpus, workload)
        rm(root)
        return arch, rest

    def verify(self, tool, root, corpus, workload):
        expected = {os.path.basename(p) for p in workload["paths"]}
        got = set(os.listdir(root)) if os.path.isdir(root) else set()
        got -= {n for n in got - expected if not os.listdir(os.path.join(root, n))}
        if got != expected:
            raise BenchError(f"{tool} restore: {len(got)} user directories in {root}, expected {len(expected)}")
        for uid in workload["sample"]:
            compare_trees(os.path.join(corpus, "users", uid), os.path.join(root, uid))

    # -- steps

    def workload(self, corpus, users, sample_n):
        probe = os.path.join(self.work, "probe")
        os.makedirs(probe)
        vault, key = os.path.join(probe, "vault"), os.path.join(probe, "restore.key")
        self.sh([self.binary, "init", "--drill", "--vault", vault, "--master-key-file", key, "--now", self.args.now],
                "shredvault init")
        out, _ = self.sh([self.binary, "archive", "--vault", vault, "--source", corpus, "--dry-run", "--json",
                          "--now", self.args.now], "shredvault archive --dry-run")
        rm(probe)
        selected = sorted(json.loads(out)["wouldArchive"])
        by_id = {u[0]: u for u in users}
        with_dir = [u for u in selected if u in by_id]
        if not with_dir:
            raise BenchError(f"the dry run selects no user with a directory in {corpus}")
        listfile = os.path.join(self.work, f"workload-{len(self.work)}-{len(with_dir)}.txt")
        with open(listfile, "w") as f:
            f.write("".join(f"users/{u}\n" for u in with_dir))
        sizes = {u: by_id[u][2] for u in with_dir}
        sample = with_dir if sample_n <= 0 else sorted(set(with_dir[:max(1, sample_n - 1)]) | {max(with_dir, key=sizes.get)})
        return {"users": selected, "paths": [f"users/{u}" for u in with_dir], "listfile": listfile,
                "bytes": sum(sizes.values()), "files": sum(by_id[u][3] for u in with_dir), "sample": sample}

    def rounds(self, corpus, workload, reps, label):
        """reps repetitions of both tools, order rotated. Returns {tool: {"archive": [m], "restore": [m]}}."""
        runs = {t: {"archive": [], "restore": []} for t in TOOLS}
        for rep in range(reps):
            order = TOOLS[rep % 2:] + TOOLS[:rep % 2]
            for tool in order:
                fn = self.shredvault if tool == "shredvault" else self.restic
                a, r = fn(corpus, workload, workload["bytes"], f"{label} {rep + 1}")
                runs[tool]["archive"].append(a)
                runs[tool]["restore"].append(r)
        return runs

    def ceiling(self, nbytes):
        """The store's raw PUT and GET speed for one object of nbytes: a minimal SigV4 client (Python's http.client,
        UNSIGNED-PAYLOAD, 1 MiB buffers), one stream, then 4 ranged GETs of the same object in parallel threads."""
        bucket = self.new_bucket("ceiling")
        block = os.urandom(1 << 20)
        out = {"object_bytes": nbytes, "client": "python http.client, SigV4 UNSIGNED-PAYLOAD"}
        key = "ceiling.bin"

        def body():
            left = nbytes
            while left:
                n = min(left, len(block))
                yield block[:n]
                left -= n
        t, s0 = time.perf_counter(), self.store.cpu_seconds()
        s3_request(self.store.env, "PUT", f"/{bucket}/{key}", body=body(), length=nbytes)
        out["put_mb_s"] = round(nbytes / (time.perf_counter() - t) / MB, 1)
        out["put_store_cpu_s"] = round(self.store.cpu_seconds() - s0, 2)
        t, s0 = time.perf_counter(), self.store.cpu_seconds()
        got = s3_request(self.store.env, "GET", f"/{bucket}/{key}")
        if got != nbytes:
            raise BenchError(f"store ceiling: GET returned {got} bytes, not {nbytes}")
        out["get_mb_s"] = round(nbytes / (time.perf_counter() - t) / MB, 1)
        out["get_store_cpu_s"] = round(self.store.cpu_seconds() - s0, 2)
        step = nbytes // 4
        results = [None] * 4

        def ranged(i):
            last = nbytes - 1 if i == 3 else (i + 1) * step - 1
            try:
                results[i] = s3_request(self.store.env, "GET", f"/{bucket}/{key}", headers={"Range": f"bytes={i * step}-{last}"})
            except BenchError as e:
                results[i] = e
        threads = [threading.Thread(target=ranged, args=(i,)) for i in range(4)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if sum(r for r in results if isinstance(r, int)) != nbytes:
            raise BenchError(f"store ceiling: ranged GETs failed: {results}")
        out["get4_mb_s"] = round(nbytes / (time.perf_counter() - t) / MB, 1)
        s3_request(self.store.env, "DELETE", f"/{bucket}/{key}")
        # Many small objects, as an archive of small users makes (a bundle and a DEK sidecar each): the store's
        # requests per second with SMALL_THREADS in flight, PUT then GET, bounds any client that stores one object
        # per user and reads it back.
        small = os.urandom(SMALL_OBJECT_BYTES)
        for method, name in (("PUT", "put"), ("GET", "get")):
            todo = list(range(SMALL_OBJECTS))
            lock = threading.Lock()
            failures = []

            def worker():
                while True:
                    with lock:
                        if not todo or failures:
                            return
                        i = todo.pop()
                    try:
                        if method == "PUT":
                            s3_request(self.store.env, "PUT", f"/{bucket}/small/{i}", body=[small], length=len(small))
                        else:
                            s3_request(self.store.env, "GET", f"/{bucket}/small/{i}")
                    except BenchError as e:
                        failures.append(e)
            threads = [threading.Thread(target=worker) for _ in range(SMALL_THREADS)]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            if failures:
                raise BenchError(f"store ceiling: small {method}s failed: {failures[0]}")
            out[f"small_{name}_per_s"] = round(SMALL_OBJECTS / (time.perf_counter() - t), 1)
        out["small_object_bytes"], out["small_objects"], out["small_threads"] = SMALL_OBJECT_BYTES, SMALL_OBJECTS, SMALL_THREADS
        log(f"store ceiling ({human_bytes(nbytes)} object): PUT {out['put_mb_s']} MB/s, GET {out['get_mb_s']} MB/s, "
            f"4 ranged GETs in parallel {out['get4_mb_s']} MB/s; {human_bytes(SMALL_OBJECT_BYTES)} objects, "
            f"{SMALL_THREADS} in flight: {out['small_put_per_s']} PUT/s, {out['small_get_per_s']} GET/s")
        return out


def s3_request(env, method, path, body=None, length=0, headers=None):
    """One SigV4-signed request (payload UNSIGNED-PAYLOAD) to the store; returns the response body's length."""
    url = urllib.parse.urlsplit(env["AWS_ENDPOINT_URL"])
    region = env.get("AWS_REGION", "us-east-1")
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    hdrs = {"host": url.netloc, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": stamp}
    signed = ";".join(sorted(hdrs))
    canonical = "\n".join([method, urllib.parse.quote(path), "", *(f"{k}:{hdrs[k]}" for k in sorted(hdrs)), "",
                           signed, "UNSIGNED-PAYLOAD"])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + env["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    hdrs["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={env['AWS_ACCESS_KEY_ID']}/{scope}, "
                             f"SignedHeaders={signed}, Signature={signature}")
    hdrs.update(headers or {})
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    try:
        conn.putrequest(method, urllib.parse.quote(path), skip_host=True, skip_accept_encoding=True)
        for name, value in hdrs.items():
            conn.putheader(name, value)
        if body is not None or method == "PUT":
            conn.putheader("Content-Length", str(length))
        conn.endheaders()
        for chunk in body or ():
            conn.send(chunk)
        resp = conn.getresponse()
        n = 0
        buf = bytearray(1 << 20)
        while True:
            got = resp.readinto(buf)
            if not got:
                break
            n += got
        if resp.status >= 300:
            raise BenchError(f"store ceiling: {method} {path} answered {resp.status}")
        return n
    finally:
        conn.close()


def summarize(ms):
    s = sorted(ms, key=lambda m: m["wall_s"])
    med = dict(s[(len(s) - 1) // 2])
    med["reps_wall_s"] = [m["wall_s"] for m in ms]
    med["peak_rss_kib"] = max(m["peak_rss_kib"] for m in ms)
    med["store_cpu_s"] = statistics.median(m["store_cpu_s"] for m in ms)
    return med


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def evaluate(report):
    measured = {}
    c = report.get("corpus_runs")
    if c:
        measured["archive_vs_restic"] = ratio(c["shredvault"]["archive"]["mb_s"], c["restic"]["archive"]["mb_s"])
        measured["restore_vs_restic"] = ratio(c["shredvault"]["restore"]["mb_s"], c["restic"]["restore"]["mb_s"])
    h = report.get("huge_runs")
    if h:
        measured["huge_archive_vs_restic"] = ratio(h["shredvault"]["archive"]["mb_s"], h["restic"]["archive"]["mb_s"])
        measured["huge_restore_vs_restic"] = ratio(h["shredvault"]["restore"]["mb_s"], h["restic"]["restore"]["mb_s"])
        measured["huge_archive_rss"] = round(h["shredvault"]["archive"]["peak_rss_kib"] / 1024, 1)
        measured["huge_restore_rss"] = round(h["shredvault"]["restore"]["peak_rss_kib"] / 1024, 1)
    out = {}
    for name, (desc, op, limit) in TARGETS.items():
        v = measured.get(name)
        met = None if v is None else (v >= limit if op == ">=" else v < limit)
        out[name] = {"target": desc, "measured": v, "met": met}
    return out


def render(report):
    lines = ["# Object-store benchmark: shredvault vs restic on the same local S3 store", ""]
    m = report.get("machine", {})
    lines.append(f"Run {report['started']}, {m.get('nproc')} cores ({m.get('cpu_model')}), load average "
                 f"{' '.join(report['loadavg_start'])} at the start and {' '.join(report['loadavg_end'])} at the end; "
                 f"{report['versions']['shredvault']}, {report['versions']['restic']}; store: {report['store']}; "
                 f"both tools through the TLS front {report['tls_front']}.")
    lines.append("Throughput = the workload's source bytes / wall seconds (MB = 10^6 B); medians of the repetitions (of two, the faster), "
                 "both tools side by side in each, order rotated; peak RSS is the largest of the repetitions.")
    lines.append("")
    ce = report.get("ceiling")
    if ce:
        lines.append(f"Store ceiling ({human_bytes(ce['object_bytes'])} random object, {ce['client']}): PUT "
                     f"{ce['put_mb_s']} MB/s, GET {ce['get_mb_s']} MB/s, 4 ranged GETs in parallel {ce['get4_mb_s']} MB/s.")
        lines.append("")
    c = report.get("corpus")
    if ce and c and ce.get("small_put_per_s"):
        per_user = 2 / ce["small_put_per_s"] + 2 / ce["small_get_per_s"]
        floor_s = c["users"] * per_user
        lines.append(f"Store floor for one object per user (small objects, {ce['small_threads']} in flight): "
                     f"{ce['small_put_per_s']} PUT/s and {ce['small_get_per_s']} GET/s. shredvault's archive makes 2 PUTs "
                     f"(bundle, DEK sidecar) and 2 GETs (their read-back) per user: about {floor_s:.1f} s of store "
                     f"time for the corpus's {c['users']} users at that rate, i.e. about {c['bytes'] / floor_s / MB:.1f} MB/s "
                     f"whatever the client; its restore makes 1 GET per user: about {c['users'] / ce['small_get_per_s']:.1f} s "
                     f"(rates sampled once, before the runs: on a shared machine they move with the load).")
        lines.append("")
        report["corpus_store_floor"] = {"archive_s": round(floor_s, 2),
                                        "archive_mb_s": round(c["bytes"] / floor_s / MB, 2),
                                        "restore_s": round(c["users"] / ce["small_get_per_s"], 2)}
    for key, title in (("corpus_runs", "corpus"), ("huge_runs", "big user")):
        runs = report.get(key)
        if not runs:
            continue
        info = report["corpus" if key == "corpus_runs" else "huge"]
        lines.append(f"## {title}: {info['users']} user(s), {info['files']} files, {info['bytes'] / MB:.1f} MB "
                     f"({human_bytes(info['bytes'])}), {info['reps']} repetition(s)")
        lines.append("")
        lines.append("| step | tool | wall s | MB/s | vs restic | peak RSS | store CPU s | wall s per rep |")
        lines.append("|---|---|---:|---:|---:|---:|---:|---|")
        for phase in ("archive", "restore"):
            for tool in TOOLS:
                r = runs[tool][phase]
                rel = ratio(r["mb_s"], runs["restic"][phase]["mb_s"])
                lines.append(f"| {phase} | {tool} | {r['wall_s']:.2f} | {r['mb_s']:.1f} | {rel:.2f}x | "
                             f"{r['peak_rss_kib'] / 1024:.1f} MiB | {r['store_cpu_s']:.1f} | "
                             f"{', '.join(f'{w:.2f}' for w in r['reps_wall_s'])} |")
        lines.append("")
    lines.append("## targets")
    lines.append("")
    for t in report["targets"].values():
        state = "not measured" if t["met"] is None else ("met" if t["met"] else "MISSED")
        lines.append(f"- {t['target']}: {t['measured']} — {state}")
    lines.append("")
    lines.append("What each tool does inside the timing: shredvault seals each user into a bundle in VAULT/staging, "
                 "verifies it there (decrypt), uploads it and reads the stored object back in full (its GETs "
                 "hashed against the catalog's SHA-256, size checked) before the catalog commit (G4 against the store); "
                 "restic uploads its packs and index and reads nothing back. The store runs on the same machine "
                 "(one proxy process, one object server), so its CPU competes with the tools'.")
    return "\n".join(lines) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(prog="bench --object-store", description=__doc__.split("\n", 2)[2],
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", metavar="PATH", help="use this shredvault binary instead of building one")
    ap.add_argument("--users", type=int, default=1000, metavar="N", help="users to generate (default 1000, ~440 MB)")
    ap.add_argument("--seed", type=int, default=1, metavar="S", help="gen-samples seed (default 1)")
    ap.add_argument("--reps", type=int, default=3, metavar="N", help="corpus repetitions (default 3)")
    ap.add_argument("--huge-bytes", type=parse_size, default=2 << 30, metavar="SIZE",
                    help="size of the big user (default 2GiB)")
    ap.add_argument("--huge-reps", type=int, default=2, metavar="N", help="big-user repetitions (default 2)")
    ap.add_argument("--skip-huge", action="store_true", help="skip the big-user step")
    ap.add_argument("--skip-corpus", action="store_true", help="skip the corpus step")
    ap.add_argument("--ceiling-bytes", type=parse_size, default=256 << 20, metavar="SIZE",
                    help="object size of the store-ceiling step (default 256MiB)")
    ap.add_argument("--verify-sample", type=int, default=50, metavar="N",
                    help="users compared with diff -r after each corpus restore (default 50; 0 = all)")
    ap.add_argument("--now", default=NOW, metavar="TIME", help=f"the jobs' clock (default {NOW})")
    ap.add_argument("--work-dir", metavar="DIR", help="scratch directory to create (default a new /tmp/bench-s3-XXXX)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--json-out", default="/tmp/bench-s3-results.json", metavar="FILE",
                    help="measurements as JSON (default /tmp/bench-s3-results.json)")
    ap.add_argument("--md-out", default="/tmp/bench-s3-results.md", metavar="FILE",
                    help="the table as markdown (default /tmp/bench-s3-results.md)")
    ap.add_argument("--strict", action="store_true", help="exit 3 if a target is missed")
    args = ap.parse_args(argv)
    if args.users < 1 or args.reps < 1 or args.huge_reps < 1:
        ap.error("--users, --reps and --huge-reps must be at least 1")

    if args.work_dir:
        os.makedirs(args.work_dir)
        work = os.path.abspath(args.work_dir)
    else:
        work = tempfile.mkdtemp(prefix="bench-s3-", dir="/tmp")
    log(f"scratch directory {work}")
    report = {"started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "argv": sys.argv,
              "loadavg_start": loadavg(), "now": args.now}
    store = front = None
    ok = False
    started = time.perf_counter()
    try:
        have = ensure_peers(REQUIRED, OPTIONAL)
        if args.bin:
            binary = os.path.abspath(args.bin)
            if not os.access(binary, os.X_OK):
                raise BenchError(f"--bin {args.bin} is not an executable")
        else:
            binary, _ = build_shredvault()
        report.update(machine=machine_info(work), git=git_provenance(), binary=binary,
                      versions={"shredvault": first_line([binary, "--version"]), "restic": first_line(["restic", "version"])})
        log("starting the local object store (tools/object-store start)")
        store = Store(os.path.join(work, "store"))
        report["store"] = f"OpenStack Swift {first_line(['/usr/bin/python3', '-c', 'import swift; print(swift.__version__)'])} " \
                          f"with s3api at {store.endpoint}, started by this run"
        front = TLSFront(work, store.endpoint)
        report["tls_front"] = f"{front.version} at {front.endpoint} (self-signed P-256 certificate for 127.0.0.1)"
        bench = S3Bench(args, binary, work, store, front)
        report["ceiling"] = bench.ceiling(args.ceiling_bytes)
        if not args.skip_corpus:
            corpus = os.path.join(work, "corpus")
            log(f"generating corpus: gen-samples --users {args.users} --seed {args.seed}")
            gen_corpus(corpus, args.users, args.seed)
            users = scan_users(corpus)
            wl = bench.workload(corpus, users, args.verify_sample)
            warm_and_measure_cache([os.path.join(corpus, p) for p in wl["paths"]], have["fincore"])
            report["corpus"] = {"users": len(wl["paths"]), "users_generated": args.users, "files": wl["files"],
                                "bytes": wl["bytes"], "seed": args.seed, "reps": args.reps}
            log(f"corpus workload: {len(wl['paths'])} users, {wl['bytes'] / MB:.1f} MB")
            runs = bench.rounds(corpus, wl, args.reps, "corpus")
            report["corpus_runs"] = {t: {p: summarize(runs[t][p]) for p in runs[t]} for t in TOOLS}
            rm(corpus)
        if not args.skip_huge:
            corpus = os.path.join(work, "corpus-huge")
            log(f"generating one user of {human_bytes(args.huge_bytes)}")
            gen_corpus(corpus, 0, args.seed, huge_bytes=args.huge_bytes)
            users = scan_users(corpus)
            wl = bench.workload(corpus, users, 0)
            warm_and_measure_cache([os.path.join(corpus, p) for p in wl["paths"]], have["fincore"])
            report["huge"] = {"users": 1, "files": wl["files"], "bytes": wl["bytes"], "reps": args.huge_reps}
            runs = bench.rounds(corpus, wl, args.huge_reps, "big user")
            report["huge_runs"] = {t: {p: summarize(runs[t][p]) for p in runs[t]} for t in TOOLS}
            rm(corpus)
        ok = True
    except BenchError as e:
        report["error"] = str(e)
        print(f"bench: FAILED: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        report["error"] = "interrupted"
        print("bench: interrupted", file=sys.stderr)
    finally:
        if front is not None:
            front.stop()
        if store is not None:
            store.stop()
        report["loadavg_end"] = loadavg()
        report["total_seconds"] = round(time.perf_counter() - started, 1)
        report["ok"] = ok
        if ok:
            report["targets"] = evaluate(report)
            report["table"] = render(report)
            with open(args.md_out, "w") as f:
                f.write(report["table"])
        if args.keep:
            log(f"kept {work}")
        else:
            rm(work)
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    log(f"results written to {args.json_out}" + (f" and {args.md_out}" if ok else ""))
    if not ok:
        return 1
    print(report["table"], flush=True)
    if args.strict and any(t["met"] is False for t in report["targets"].values()):
        return 3
    return 0
