"""Shared helpers of tools/bench and tools/bench-bundle. Python 3 standard library only.

Both benchmarks follow the same method: every subprocess's exit status is checked, tools are alternated
within each repetition and medians reported, `sync` runs before each timed phase (its duration after the
phase is recorded), the source is read once before timing (warm page cache, measured with fincore; no
drop_caches on a shared machine), and peak RSS comes from GNU time (`/usr/bin/time -f %M`), never from
Python's rusage (a child's ru_maxrss on Linux includes the spawning Python's own resident size).
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GNU_TIME = "/usr/bin/time"
MIB = 1 << 20


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_size(text):
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    suffix = t[-1] if t and t[-1] in units else ""
    number = t[:-1] if suffix else t
    try:
        value = int(number) * units[suffix]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size like 2147483648, 256MiB or 2GiB")
    if value < MIB:
        raise argparse.ArgumentTypeError("sizes must be at least 1 MiB (gen-samples' minimum)")
    return value


def human_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def fmt_rss(kib):
    return f"{kib / 1024:.1f} MiB" if kib else "-"


def run(cmd, what, **kw):
    """Runs a command to completion; raises BenchError (with its output) unless it exits 0."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        out = (p.stdout + p.stderr).strip()
        raise BenchError(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n{out[-3000:]}")
    return p.stdout


def tail(path, limit=2000):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def first_line(cmd):
    """First line of a command's stdout (or stderr), '?' if it cannot run: for version strings."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
        return (p.stdout.strip() or p.stderr.strip()).splitlines()[0]
    except (OSError, IndexError):
        return "?"


# ---------------------------------------------------------------- setup


def have(cmd):
    return os.access(cmd, os.X_OK) if cmd.startswith("/") else shutil.which(cmd) is not None


def ensure_peers(required, optional):
    """required/optional: {command: Debian package}. Installs what is missing with apt-get (as root; an
    `apt-get update` and a second try if the first install fails). Returns {optional command: present}."""
    missing = sorted({pkg for cmd, pkg in required.items() if not have(cmd)})
    missing_optional = sorted({pkg for cmd, pkg in optional.items() if not have(cmd)})
    if missing or missing_optional:
        pkgs = missing + missing_optional
        if os.geteuid() != 0:
            if missing:
                raise BenchError(f"missing {', '.join(missing)}: run as root or `sudo apt-get install -y {' '.join(missing)}`")
        else:
            log(f"installing {' '.join(pkgs)} with apt-get")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs]
            if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
                run(["apt-get", "update", "-q"], "apt-get update", env=env)
                run(cmd, "apt-get install", env=env)
    still = [cmd for cmd in required if not have(cmd)]
    if still:
        raise BenchError(f"still missing after apt-get: {', '.join(still)}")
    return {cmd: have(cmd) for cmd in optional}


def build_shredvault():
    if shutil.which("swift") is None:
        raise BenchError("swift is not on PATH (install the Swift toolchain, then tools/setup), or pass --bin PATH")
    cmd = ["swift", "build", "-c", "release", "--product", "shredvault", "--scratch-path", ".build-bench"]
    log(f"building: {' '.join(cmd)} (first build takes a few minutes)")
    t = time.perf_counter()
    for attempt in range(1, 4):
        try:
            run(cmd, "swift build", cwd=REPO)
            break
        except BenchError as e:
            # Sources edited by someone else mid-build: SwiftPM refuses the result; building again is right.
            if "modified during the build" not in str(e) or attempt == 3:
                raise
            log("a source file changed during the build; building again")
    elapsed = time.perf_counter() - t
    path = os.path.join(REPO, ".build-bench", "release", "shredvault")
    if not os.access(path, os.X_OK):
        raise BenchError(f"build succeeded but {path} is missing")
    return path, elapsed


def gen_corpus(out, users, seed, huge_bytes=None, profile="mixed"):
    cmd = [os.path.join(REPO, "tools", "gen-samples"), "--out", out, "--users", str(users), "--seed", str(seed),
           "--profile", profile, "--json", "--quiet"]
    if huge_bytes is not None:
        cmd += ["--huge-user-bytes", str(huge_bytes)]
    t = time.perf_counter()
    summary = json.loads(run(cmd, "gen-samples"))
    summary["generate_seconds"] = round(time.perf_counter() - t, 2)
    return summary


def scan_users(corpus):
    """[(user_id, path, bytes, files)] for every directory under corpus/users, sorted by id."""
    root = os.path.join(corpus, "users")
    if not os.path.isdir(root):
        raise BenchError(f"{corpus} has no users/ directory (not a gen-samples corpus)")
    users = []
    for uid in sorted(os.listdir(root)):
        path = os.path.join(root, uid)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        total = files = 0
        for dirpath, _dirs, names in os.walk(path):
            for name in names:
                st = os.lstat(os.path.join(dirpath, name))
                total += st.st_size
                files += 1
        users.append((uid, path, total, files))
    if not users:
        raise BenchError(f"{root} holds no user directories")
    return users


def all_files(paths):
    for top in paths:
        for dirpath, _dirs, names in os.walk(top):
            for name in names:
                yield os.path.join(dirpath, name)


def warm_and_measure_cache(paths, have_fincore):
    """Reads every file once (so every tool sees the same warm cache), then asks fincore how much
    of the data is resident. Returns (resident_bytes, total_bytes) or (None, total)."""
    total = 0
    buf = bytearray(1 << 20)
    for f in all_files(paths):
        with open(f, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                total += n
    if not have_fincore:
        return None, total
    resident = 0
    files = list(all_files(paths))
    for i in range(0, len(files), 400):
        out = run(["fincore", "-b", "-n", "-r", "-o", "RES,SIZE", *files[i:i + 400]], "fincore")
        for line in out.splitlines():
            res, size = line.split()
            resident += min(int(res), int(size))  # RES counts whole 4 KiB pages
    return resident, total


def machine_info(work):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    fstype = "?"
    if shutil.which("findmnt"):
        fstype = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", work],
                                capture_output=True, text=True).stdout.strip() or "?"
    os_name = "?"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "hostname": platform.node(), "kernel": platform.release(), "os": os_name, "nproc": os.cpu_count(),
        "cpu_model": cpu, "mem_total_bytes": mem, "work_fs": fstype,
    }


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def git_provenance():
    def git(*args):
        p = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 else "?"
    dirty = git("status", "--porcelain", "--", "Sources", "Package.swift")
    return {"head": git("rev-parse", "HEAD"),
            "sources_changed_vs_head": len(dirty.splitlines()) if dirty != "?" else None}


# ---------------------------------------------------------------- process running


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def read_rss(path):
    """The peak RSS (KiB) GNU time wrote with -f %M -o path (its last non-empty line)."""
    with open(path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    return int(lines[-1])


def pipeline(cmds, stdout, what, errlog, rss_paths=None, stdin=subprocess.DEVNULL, **popen_kw):
    """Runs cmds as a shell-less pipeline (cmd1 | cmd2 | ...), last stdout to `stdout`, every stderr
    appended to errlog. With rss_paths (one path per command) each runs under GNU time -f %M -o path.
    Raises BenchError unless every process exits 0; returns the peak RSS list (KiB) or []."""
    procs = []
    prev = stdin
    with open(errlog, "ab") as err:
        try:
            for i, cmd in enumerate(cmds):
                last = i == len(cmds) - 1
                if rss_paths:
                    cmd = [GNU_TIME, "-f", "%M", "-o", rss_paths[i], *cmd]
                p = subprocess.Popen(cmd, stdin=prev, stdout=stdout if last else subprocess.PIPE, stderr=err,
                                     **popen_kw)
                if i > 0:
                    prev.close()
                prev = p.stdout if not last else None
                procs.append(p)
        finally:
            if prev is not None and len(procs) > 0 and prev is procs[-1].stdout:
                prev.close()
            codes = [p.wait() for p in procs]
    if len(procs) != len(cmds) or any(codes):
        names = [os.path.basename(c[0]) for c in cmds]
        raise BenchError(f"{what}: exit statuses {dict(zip(names, codes))}\n{tail(errlog)}")
    return [read_rss(p) for p in rss_paths] if rss_paths else []


def timed_sync():
    t = time.perf_counter()
    os.sync()
    return round(time.perf_counter() - t, 3)


def dir_bytes(path):
    return sum(os.lstat(f).st_size for f in all_files([path]))


def rm(path):
    if os.path.lexists(path):
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)


def startup_ms(cmd, n=20):
    """Mean wall ms of starting and exiting `cmd` (e.g. --version): the fixed cost of one process."""
    t = time.perf_counter()
    for _ in range(n):
        if subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).wait() != 0:
            raise BenchError(f"{' '.join(cmd)} failed")
    return round((time.perf_counter() - t) / n * 1000, 2)


def spawn_overhead():
    n = 100
    t = time.perf_counter()
    for _ in range(n):
        subprocess.Popen(["/bin/true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).wait()
    return (time.perf_counter() - t) / n * 1000


# ---------------------------------------------------------------- verification


def compare_trees(src, dst):
    """diff -r for content (fatal), then mode/mtime/type of every entry (reported)."""
    p = subprocess.run(["diff", "-r", "-q", src, dst], capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"restored tree differs: diff -r {src} {dst}\n{(p.stdout + p.stderr)[-2000:]}")
    meta = []
    for dirpath, dirs, names in os.walk(src):
        for name in dirs + names:
            a = os.path.join(dirpath, name)
            b = os.path.join(dst, os.path.relpath(a, src))
            sa, sb = os.lstat(a), os.lstat(b)
            if (sa.st_mode != sb.st_mode) or int(sa.st_mtime) != int(sb.st_mtime):
                meta.append(f"{os.path.relpath(a, src)}: mode {oct(sa.st_mode)}->{oct(sb.st_mode)} "
                            f"mtime {int(sa.st_mtime)}->{int(sb.st_mtime)}")
    return meta
