#pragma once
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Confined path resolution for safe extraction: openat2(2) (Linux >= 5.6) has no glibc wrapper before 2.41
   and syscall(2) is variadic (not imported into Swift). Values from <linux/openat2.h>. */
#ifndef O_PATH
#define O_PATH 010000000
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

struct carchive_open_how {
    unsigned long long flags;
    unsigned long long mode;
    unsigned long long resolve;
};

/* Opens `path` relative to `dirfd` as an O_PATH descriptor, resolving beneath `dirfd` only (RESOLVE_BENEATH |
   RESOLVE_NO_MAGICLINKS; plus RESOLVE_NO_SYMLINKS when `no_symlinks`); the last component is not followed when
   `no_follow`. Returns the descriptor, or -1 with errno (EXDEV: escapes, ELOOP: a refused symlink, ENOSYS: no
   openat2 in this kernel). */
static inline int carchive_open_beneath(int dirfd, const char *path, int no_follow, int no_symlinks) {
    struct carchive_open_how how = {
        .flags = (unsigned long long)(O_PATH | O_CLOEXEC | (no_follow ? O_NOFOLLOW : 0)),
        .mode = 0,
        .resolve = 0x08 /* RESOLVE_BENEATH */ | 0x02 /* RESOLVE_NO_MAGICLINKS */ | (no_symlinks ? 0x04 : 0),
    };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* O_PATH | O_DIRECTORY | O_CLOEXEC, for the root descriptor. */
static inline int carchive_open_directory_path(const char *path) {
    return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* copy_file_range(2) (Linux >= 4.5) for ChunkedCopy: glibc declares it only under _GNU_SOURCE, which the Swift
   importer does not set, so it is called through syscall(2) here. Copies up to `length` bytes from the current
   offset of `in` to the current offset of `out`; returns the bytes copied (0 at the end of the input) or -1 with
   errno. */
#ifndef SYS_copy_file_range
#define SYS_copy_file_range 326
#endif
static inline long carchive_copy_file_range(int in, int out, unsigned long length) {
    return syscall(SYS_copy_file_range, in, (void *)0, out, (void *)0, length, 0u);
}
