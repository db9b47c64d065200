/*
 * chaos-shim.c: LD_PRELOAD fault injector for ShredVault's chaos tests (Tests/CLITests/ChaosTests.swift, tools/chaos).
 *
 * Build (the tests do this themselves):  cc -shared -fPIC -O2 -o chaos-shim.so tools/chaos-shim.c -ldl
 *
 * It interposes the libc calls that make a job's effects durable or visible, grouped in KINDS:
 *
 *   fsync      fsync
 *   fdatasync  fdatasync
 *   write      write                      (only on regular files: see below)
 *   pwrite     pwrite, pwrite64           (only on regular files)
 *   rename     rename, renameat, renameat2
 *   unlink     unlink, unlinkat           (unlinkat with AT_REMOVEDIR counts too: rmdir of a staging directory)
 *   ftruncate  ftruncate, ftruncate64     (SQLite truncates journals and WAL files)
 *   mkdir      mkdir, mkdirat
 *   create     open, open64, openat, openat64 with O_CREAT or O_TMPFILE (creating a file)
 *   rmdir      rmdir
 *
 * The Swift code calls these through libc (Storage/Syscalls.swift, CPosix's renameat2), and so does SQLite's unix
 * VFS (its syscall table holds pointers resolved through the dynamic linker, which LD_PRELOAD interposes).
 *
 * Writes count only when the descriptor is a regular file (fstat). So the CLI's own output on stdout/stderr (pipes
 * or a terminal), Dispatch's eventfd wake-ups and pipes never move the points: the N-th write is the N-th write of
 * data to a file, the same in every run of the same command on the same vault (up to thread interleaving).
 *
 * Environment:
 *   CHAOS_MODE        count | kill | eio | enospc     (unset or empty: pass through, count nothing)
 *   CHAOS_CALLS       comma-separated kinds that are counted (default: all kinds above)
 *   CHAOS_AT          N >= 1: the N-th counted call (over the counted kinds together) is the fault point
 *   CHAOS_STICKY      1: in eio/enospc mode every counted call from the N-th on fails (a disk that stays broken);
 *                     default: only the N-th call fails (a transient error)
 *   CHAOS_COUNT_FILE  count mode: a binary file of 16 little-endian uint64 counters (one per kind, in the order
 *                     of the table above, then zeros), updated on every call through a shared mapping, so a
 *                     killed process still reports what it did. Other modes update it as well (calls made
 *                     before and after the fault).
 *   CHAOS_TRACE       count mode: append one line per counted call: "<n> <kind> <symbol> <target>"
 *                     (target: the path argument, or the path of the descriptor from /proc/self/fd)
 *   CHAOS_HIT_FILE    kill/eio/enospc: written just before the fault acts: "<mode> <kind> <symbol> <n> <target>\n".
 *                     Its existence proves the fault landed; in kill mode the process then dies by SIGKILL.
 *
 * Two path-targeted faults work in any mode (also with CHAOS_MODE unset) and count nothing; they act on files opened
 * without creating them (open, open64, openat, openat64 without O_CREAT/O_TMPFILE) whose path ends in SUFFIX:
 *   CHAOS_OPEN_FAIL   ERRNO:SUFFIX (ERRNO one of ENOENT, EACCES, EIO): the open fails with that errno, as for a
 *                     file that vanished after it was listed, one that may not be read, or a failing disk
 *   CHAOS_READ_FLIP   SUFFIX: every read() and pread() from the first descriptor opened on a path that contains
 *                     SUFFIX (so also a temporary ".NAME.svb.partial-..." being read back while it is written) returns
 *                     its bytes with the last one inverted, as a disk or cache that does not return what was
 *                     written (one file)
 *
 * Only the process that loaded the shim first acts: the constructor removes LD_PRELOAD from the environment, so
 * any child process runs without the shim. The counter is atomic; the shim allocates nothing on the fault path
 * and uses the real functions (dlsym(RTLD_NEXT)) for its own writes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

enum { K_FSYNC, K_FDATASYNC, K_WRITE, K_PWRITE, K_RENAME, K_UNLINK, K_FTRUNCATE, K_MKDIR, K_CREATE, K_RMDIR, K_COUNT };
static const char *kind_names[K_COUNT] = {"fsync", "fdatasync", "write", "pwrite", "rename", "unlink", "ftruncate", "mkdir", "create", "rmdir"};

enum { M_OFF, M_COUNT, M_KILL, M_EIO, M_ENOSPC };
static int mode = M_OFF;
static unsigned counted_mask = (1u << K_COUNT) - 1;
static long long fault_at = 0;
static int sticky = 0;
static long long counter = 0;           /* counted calls so far (atomic) */
static volatile uint64_t *totals = NULL;  /* shared mapping of CHAOS_COUNT_FILE, 16 slots */
static char hit_path[4096];
static char trace_path[4096];
static int trace_fd = -1;
static int open_fail_errno = 0;
static char open_fail_suffix[1024];
static char read_flip_suffix[1024];
/* Descriptors opened on a CHAOS_READ_FLIP path (a flag per descriptor number below 4096). */
static volatile unsigned char flip_fd[4096];

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_rmdir)(const char *);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pread64)(int, void *, size_t, off_t);
static int (*real_close)(int);

#define RESOLVE(name) do { if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); } while (0)

static void resolve_all(void) {
    RESOLVE(write); RESOLVE(pwrite); RESOLVE(pwrite64); RESOLVE(fsync); RESOLVE(fdatasync); RESOLVE(rename);
    RESOLVE(renameat); RESOLVE(renameat2); RESOLVE(unlink); RESOLVE(unlinkat); RESOLVE(ftruncate); RESOLVE(ftruncate64);
    RESOLVE(mkdir); RESOLVE(mkdirat); RESOLVE(open); RESOLVE(open64); RESOLVE(openat); RESOLVE(openat64); RESOLVE(rmdir);
    RESOLVE(read); RESOLVE(close);
}

/* Raw open that never goes through the interposed symbols. */
static int raw_open(const char *path, int flags, mode_t m) { return (int)syscall(SYS_openat, AT_FDCWD, path, flags, m); }

/* Raw write that never goes through the interposed symbols. */
static void raw_write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = syscall(SYS_write, fd, buf, len);
        if (n < 0) { if (errno == EINTR) continue; return; }
        buf += n; len -= (size_t)n;
    }
}

__attribute__((constructor)) static void chaos_init(void) {
    int saved = errno;
    resolve_all();
    const char *m = getenv("CHAOS_MODE");
    if (m && *m) {
        if (!strcmp(m, "count")) mode = M_COUNT;
        else if (!strcmp(m, "kill")) mode = M_KILL;
        else if (!strcmp(m, "eio")) mode = M_EIO;
        else if (!strcmp(m, "enospc")) mode = M_ENOSPC;
    }
    const char *calls = getenv("CHAOS_CALLS");
    if (calls && *calls) {
        counted_mask = 0;
        char buf[512];
        snprintf(buf, sizeof buf, "%s", calls);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
            for (int k = 0; k < K_COUNT; k++) if (!strcmp(t, kind_names[k])) counted_mask |= 1u << k;
    }
    const char *at = getenv("CHAOS_AT");
    if (at && *at) fault_at = atoll(at);
    const char *st = getenv("CHAOS_STICKY");
    sticky = st && !strcmp(st, "1");
    const char *hit = getenv("CHAOS_HIT_FILE");
    if (hit) snprintf(hit_path, sizeof hit_path, "%s", hit);
    const char *trace = getenv("CHAOS_TRACE");
    if (trace) snprintf(trace_path, sizeof trace_path, "%s", trace);
    const char *of = getenv("CHAOS_OPEN_FAIL");
    const char *colon = of ? strchr(of, ':') : NULL;
    if (colon && colon[1]) {
        size_t n = (size_t)(colon - of);
        if (n == 6 && !strncmp(of, "ENOENT", n)) open_fail_errno = ENOENT;
        else if (n == 6 && !strncmp(of, "EACCES", n)) open_fail_errno = EACCES;
        else if (n == 3 && !strncmp(of, "EIO", n)) open_fail_errno = EIO;
        snprintf(open_fail_suffix, sizeof open_fail_suffix, "%s", colon + 1);
    }
    const char *rf = getenv("CHAOS_READ_FLIP");
    if (rf && *rf) snprintf(read_flip_suffix, sizeof read_flip_suffix, "%s", rf);
    const char *cf = getenv("CHAOS_COUNT_FILE");
    if (mode != M_OFF && cf && *cf) {
        int fd = raw_open(cf, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            if (real_ftruncate(fd, 16 * sizeof(uint64_t)) == 0) {
                void *p = mmap(NULL, 16 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (p != MAP_FAILED) totals = p;
            }
            close(fd);
        }
    }
    if (mode == M_COUNT && trace_path[0]) trace_fd = raw_open(trace_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    /* Only this process acts: children (if any) run without the shim. */
    unsetenv("LD_PRELOAD");
    errno = saved;
}

static void describe_fd(int fd, char *out, size_t cap) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n < 0) n = 0;
    out[n] = 0;
}

static void note(const char *path, int fd, const char *target2, char *out, size_t cap) {
    if (path) {
        if (target2) snprintf(out, cap, "%s -> %s", path, target2);
        else snprintf(out, cap, "%s", path);
    } else {
        describe_fd(fd, out, cap);
    }
}

/*
 * Called before every interposed call. Returns 0 to go ahead with the real call, or -1 with errno set to fail it.
 * In kill mode it does not return at the fault point.
 */
static int chaos_before(int kind, const char *symbol, int fd, const char *path, const char *path2) {
    if (mode == M_OFF || !(counted_mask & (1u << kind))) return 0;
    int saved = errno;
    long long n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
    if (totals) __atomic_add_fetch(&totals[kind], 1, __ATOMIC_SEQ_CST);
    if (mode == M_COUNT) {
        if (trace_fd >= 0) {
            char target[4200], line[4400];
            note(path, fd, path2, target, sizeof target);
            int len = snprintf(line, sizeof line, "%lld %s %s %s\n", n, kind_names[kind], symbol, target);
            if (len > 0) raw_write_all(trace_fd, line, (size_t)(len < (int)sizeof line ? len : (int)sizeof line - 1));
        }
        errno = saved;
        return 0;
    }
    int hit = (n == fault_at) || (sticky && fault_at > 0 && n > fault_at && mode != M_KILL);
    if (!hit) { errno = saved; return 0; }
    if (n == fault_at && hit_path[0]) {
        char target[4200], line[4400];
        note(path, fd, path2, target, sizeof target);
        const char *mname = mode == M_KILL ? "kill" : mode == M_EIO ? "eio" : "enospc";
        int len = snprintf(line, sizeof line, "%s %s %s %lld %s\n", mname, kind_names[kind], symbol, n, target);
        int hfd = raw_open(hit_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (hfd >= 0) {
            if (len > 0) raw_write_all(hfd, line, (size_t)(len < (int)sizeof line ? len : (int)sizeof line - 1));
            close(hfd);
        }
    }
    if (mode == M_KILL) {
        kill(getpid(), SIGKILL);
        for (;;) pause();
    }
    errno = mode == M_EIO ? EIO : ENOSPC;
    return -1;
}

static int is_regular(int fd) {
    struct stat st;
    int saved = errno;
    int r = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    errno = saved;
    return r;
}

ssize_t write(int fd, const void *buf, size_t count) {
    RESOLVE(write);
    if (mode != M_OFF && fd > 2 && is_regular(fd) && chaos_before(K_WRITE, "write", fd, NULL, NULL) < 0) return -1;
    return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    RESOLVE(pwrite);
    if (mode != M_OFF && is_regular(fd) && chaos_before(K_PWRITE, "pwrite", fd, NULL, NULL) < 0) return -1;
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    RESOLVE(pwrite64);
    if (mode != M_OFF && is_regular(fd) && chaos_before(K_PWRITE, "pwrite64", fd, NULL, NULL) < 0) return -1;
    return real_pwrite64(fd, buf, count, offset);
}

int fsync(int fd) {
    RESOLVE(fsync);
    if (chaos_before(K_FSYNC, "fsync", fd, NULL, NULL) < 0) return -1;
    return real_fsync(fd);
}

int fdatasync(int fd) {
    RESOLVE(fdatasync);
    if (chaos_before(K_FDATASYNC, "fdatasync", fd, NULL, NULL) < 0) return -1;
    return real_fdatasync(fd);
}

int rename(const char *from, const char *to) {
    RESOLVE(rename);
    if (chaos_before(K_RENAME, "rename", -1, from, to) < 0) return -1;
    return real_rename(from, to);
}

int renameat(int olddirfd, const char *from, int newdirfd, const char *to) {
    RESOLVE(renameat);
    if (chaos_before(K_RENAME, "renameat", -1, from, to) < 0) return -1;
    return real_renameat(olddirfd, from, newdirfd, to);
}

int renameat2(int olddirfd, const char *from, int newdirfd, const char *to, unsigned int flags) {
    RESOLVE(renameat2);
    if (chaos_before(K_RENAME, "renameat2", -1, from, to) < 0) return -1;
    if (!real_renameat2) return (int)syscall(SYS_renameat2, olddirfd, from, newdirfd, to, flags);
    return real_renameat2(olddirfd, from, newdirfd, to, flags);
}

int unlink(const char *path) {
    RESOLVE(unlink);
    if (chaos_before(K_UNLINK, "unlink", -1, path, NULL) < 0) return -1;
    return real_unlink(path);
}

int unlinkat(int dirfd, const char *path, int flags) {
    RESOLVE(unlinkat);
    if (chaos_before(K_UNLINK, "unlinkat", -1, path, NULL) < 0) return -1;
    return real_unlinkat(dirfd, path, flags);
}

int ftruncate(int fd, off_t length) {
    RESOLVE(ftruncate);
    if (chaos_before(K_FTRUNCATE, "ftruncate", fd, NULL, NULL) < 0) return -1;
    return real_ftruncate(fd, length);
}

int ftruncate64(int fd, off_t length) {
    RESOLVE(ftruncate64);
    if (chaos_before(K_FTRUNCATE, "ftruncate64", fd, NULL, NULL) < 0) return -1;
    return real_ftruncate64(fd, length);
}

int mkdir(const char *path, mode_t m) {
    RESOLVE(mkdir);
    if (chaos_before(K_MKDIR, "mkdir", -1, path, NULL) < 0) return -1;
    return real_mkdir(path, m);
}

int mkdirat(int dirfd, const char *path, mode_t m) {
    RESOLVE(mkdirat);
    if (chaos_before(K_MKDIR, "mkdirat", -1, path, NULL) < 0) return -1;
    return real_mkdirat(dirfd, path, m);
}

int rmdir(const char *path) {
    RESOLVE(rmdir);
    if (chaos_before(K_RMDIR, "rmdir", -1, path, NULL) < 0) return -1;
    return real_rmdir(path);
}

#define CREATES(flags) (((flags) & O_CREAT) || (((flags) & O_TMPFILE) == O_TMPFILE))

static int ends_with(const char *path, const char *suffix) {
    if (!path || !suffix[0]) return 0;
    size_t n = strlen(path), m = strlen(suffix);
    return n >= m && !strcmp(path + n - m, suffix);
}

/* CHAOS_OPEN_FAIL: -1 with errno set when this open must fail. */
static int open_fault(const char *path, int flags) {
    if (!open_fail_errno || CREATES(flags) || !ends_with(path, open_fail_suffix)) return 0;
    errno = open_fail_errno;
    return -1;
}

/* CHAOS_READ_FLIP: marks the first descriptor opened on a matching path. Returns fd. */
static int read_flip_used = 0;
static int note_opened(int fd, const char *path, int flags) {
    if (fd < 0 || fd >= 4096) return fd;
    flip_fd[fd] = 0;
    if (read_flip_suffix[0] && !CREATES(flags) && path && strstr(path, read_flip_suffix) && !__atomic_exchange_n(&read_flip_used, 1, __ATOMIC_SEQ_CST))
        flip_fd[fd] = 1;
    return fd;
}

ssize_t read(int fd, void *buf, size_t count) {
    RESOLVE(read);
    ssize_t n = real_read(fd, buf, count);
    if (n > 0 && fd >= 0 && fd < 4096 && flip_fd[fd]) ((unsigned char *)buf)[n - 1] ^= 0xff;
    return n;
}

ssize_t pread(int fd, void *buf, size_t count, off_t offset) {
    RESOLVE(pread);
    ssize_t n = real_pread(fd, buf, count, offset);
    if (n > 0 && fd >= 0 && fd < 4096 && flip_fd[fd]) ((unsigned char *)buf)[n - 1] ^= 0xff;
    return n;
}

ssize_t pread64(int fd, void *buf, size_t count, off_t offset) {
    RESOLVE(pread64);
    ssize_t n = real_pread64(fd, buf, count, offset);
    if (n > 0 && fd >= 0 && fd < 4096 && flip_fd[fd]) ((unsigned char *)buf)[n - 1] ^= 0xff;
    return n;
}

int close(int fd) {
    RESOLVE(close);
    if (fd >= 0 && fd < 4096) flip_fd[fd] = 0;
    return real_close(fd);
}
#define OPEN_MODE(flags, m) do { if (CREATES(flags)) { va_list ap; va_start(ap, flags); m = (mode_t)va_arg(ap, int); va_end(ap); } } while (0)

int open(const char *path, int flags, ...) {
    mode_t m = 0; OPEN_MODE(flags, m);
    RESOLVE(open);
    if (CREATES(flags) && chaos_before(K_CREATE, "open", -1, path, NULL) < 0) return -1;
    if (open_fault(path, flags) < 0) return -1;
    return note_opened(real_open(path, flags, m), path, flags);
}

int open64(const char *path, int flags, ...) {
    mode_t m = 0; OPEN_MODE(flags, m);
    RESOLVE(open64);
    if (CREATES(flags) && chaos_before(K_CREATE, "open64", -1, path, NULL) < 0) return -1;
    if (open_fault(path, flags) < 0) return -1;
    return note_opened(real_open64(path, flags, m), path, flags);
}

int openat(int dirfd, const char *path, int flags, ...) {
    mode_t m = 0; OPEN_MODE(flags, m);
    RESOLVE(openat);
    if (CREATES(flags) && chaos_before(K_CREATE, "openat", -1, path, NULL) < 0) return -1;
    if (open_fault(path, flags) < 0) return -1;
    return note_opened(real_openat(dirfd, path, flags, m), path, flags);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    mode_t m = 0; OPEN_MODE(flags, m);
    RESOLVE(openat64);
    if (CREATES(flags) && chaos_before(K_CREATE, "openat64", -1, path, NULL) < 0) return -1;
    if (open_fault(path, flags) < 0) return -1;
    return note_opened(real_openat64(dirfd, path, flags, m), path, flags);
}
