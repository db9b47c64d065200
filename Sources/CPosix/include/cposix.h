#ifndef SHREDVAULT_CPOSIX_H
#define SHREDVAULT_CPOSIX_H
/// Linux calls that Swift's Glibc module does not import.
/// renameat2(RENAME_NOREPLACE): atomically publish a file or directory, failing with EEXIST instead of replacing.
int shredvault_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
#endif
