#pragma once
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

/* sync_file_range(2) is declared by glibc only under _GNU_SOURCE, which the Swift Glibc module does not define,
   and syscall(2) is variadic (not imported into Swift): a typed shim. Flags from <linux/fs.h>. */
#define CFILEIO_SYNC_FILE_RANGE_WAIT_BEFORE 1u
#define CFILEIO_SYNC_FILE_RANGE_WRITE 2u
#define CFILEIO_SYNC_FILE_RANGE_WAIT_AFTER 4u

/* Starts (SYNC_FILE_RANGE_WRITE) or waits for write-back of [offset, offset + nbytes) of `fd`; 0 or -1/errno. */
static inline int cfileio_sync_file_range(int fd, long long offset, long long nbytes, unsigned int flags) {
    return (int)syscall(SYS_sync_file_range, fd, offset, nbytes, flags);
}

/* pidfd_open(2) (Linux 5.3): a descriptor that polls readable when process `pid` has ended; -1/errno (ENOSYS on
   older kernels). */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
static inline int cfileio_pidfd_open(int pid) { return (int)syscall(SYS_pidfd_open, pid, 0u); }

#include <malloc.h>

/* Gives the free pages of every malloc arena back to the kernel (madvise); returns 1 if memory was released. */
/* Names the calling thread (pthread_setname_np is a GNU extension, declared only under _GNU_SOURCE; Linux keeps at
   most 15 bytes). */
int pthread_setname_np(pthread_t thread, const char *name);
static inline int cfileio_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

static inline int cfileio_malloc_trim(void) { return malloc_trim(0); }

/* At most `count` malloc arenas (M_ARENA_MAX); 1 on success. */
static inline int cfileio_malloc_arena_max(int count) { return mallopt(M_ARENA_MAX, count); }

/* Allocations of at least `bytes` are mmapped (M_MMAP_THRESHOLD, fixed: no dynamic raise); 1 on success. */
static inline int cfileio_malloc_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
