#ifndef SHREDVAULT_CPOSIX_H
#define SHREDVAULT_CPOSIX_H
/// Linux calls that Swift's Glibc module does not import.
/// renameat2(RENAME_NOREPLACE): atomically publish a file or directory, failing with EEXIST instead of replacing.
int shredvault_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
/// sync_file_range(SYNC_FILE_RANGE_WRITE) over the whole file: starts writeback of its dirty pages without waiting,
/// so a later fsync finds the data already on its way. Not a durability guarantee by itself.
int shredvault_start_writeback(int fd);
/// fallocate(FALLOC_FL_KEEP_SIZE) of the file's first `bytes`: reserves its blocks up front, leaving its size alone.
int shredvault_preallocate(int fd, long long bytes);
/* mallopt(M_MMAP_THRESHOLD, bytes): 1 on success, 0 when refused. */
int shredvault_fix_mmap_threshold(int bytes);
#endif
