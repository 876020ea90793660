/*
 * The system calls remux-sandbox-enter makes, without a C library: the calling convention of x86_64 and
 * aarch64, and the process entry. Every function returns the kernel's result: >= 0, or -errno.
 * Constants come from the kernel's own headers.
 */
#ifndef REMUX_SYSCALL_H
#define REMUX_SYSCALL_H

#include <asm/unistd.h>
#include <linux/capability.h>
#include <linux/fcntl.h>
#include <linux/nsfs.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/stat.h>
#include <linux/time_types.h>
#include <asm-generic/poll.h>

#define SIG_DFL 0L
#define SIG_IGN 1L
#define RLIMIT_CORE 4
#define SIGCHLD 17

struct kernel_sigaction {
  long handler;
  unsigned long flags;
  long restorer;
  unsigned long mask;
};
struct rlimit {
  unsigned long cur, max;
};
typedef struct __user_cap_header_struct cap_header_t;
typedef struct __user_cap_data_struct cap_data_t;

int remux_main(int argc, char **argv, char **envp);

#if defined(__x86_64__) || defined(__aarch64__)

static inline long sc6(long n, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
#else
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
#endif
}

/* The process entry: the kernel leaves argc, argv and envp on the stack. */
void remux_start(long *sp);
void remux_start(long *sp) {
  int argc = (int)sp[0];
  char **argv = (char **)(sp + 1);
  sc6(__NR_exit_group, remux_main(argc, argv, argv + argc + 1), 0, 0, 0, 0, 0);
}
#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call remux_start\n hlt\n");
#else
__asm__(".text\n.global _start\n_start:\n mov x29, #0\n mov x30, #0\n mov x0, sp\n and sp, x0, #-16\n bl remux_start\n");
#endif

#else
#error "remux-sandbox-enter: add this architecture's system call convention to native/syscall.h (x86_64 and aarch64 are supported)"
#endif

static inline long sys_write(int fd, const void *buf, unsigned long len) { return sc6(__NR_write, fd, (long)buf, (long)len, 0, 0, 0); }
static inline void sys_exit(int status) {
  for (;;) sc6(__NR_exit_group, status, 0, 0, 0, 0, 0);
}
static inline long sys_close(int fd) { return sc6(__NR_close, fd, 0, 0, 0, 0, 0); }
static inline long sys_ioctl(long fd, unsigned long request) { return sc6(__NR_ioctl, fd, (long)request, 0, 0, 0, 0); }
static inline long sys_setns(int fd, long type) { return sc6(__NR_setns, fd, type, 0, 0, 0, 0); }
static inline long sys_prctl(long option, long a, long b) { return sc6(__NR_prctl, option, a, b, 0, 0, 0); }
static inline long sys_capset(cap_header_t *header, cap_data_t *data) { return sc6(__NR_capset, (long)header, (long)data, 0, 0, 0, 0); }
static inline long sys_rt_sigaction(int sig, const struct kernel_sigaction *action) {
  return sc6(__NR_rt_sigaction, sig, (long)action, 0, sizeof(unsigned long), 0, 0);
}
static inline long sys_chdir(const char *path) { return sc6(__NR_chdir, (long)path, 0, 0, 0, 0, 0); }
static inline long sys_openat(const char *path, long flags, long mode) { return sc6(__NR_openat, AT_FDCWD, (long)path, flags, mode, 0, 0); }
static inline long sys_fcntl(long fd, long cmd, long arg) { return sc6(__NR_fcntl, fd, cmd, arg, 0, 0, 0); }
static inline long sys_dup3(long fd, long target, long flags) { return sc6(__NR_dup3, fd, target, flags, 0, 0, 0); }
/* The file type bits of an open fd (statx: one struct layout on every architecture). */
static inline long sys_fd_type(long fd, unsigned short *mode) {
  struct statx st;
  long err = sc6(__NR_statx, fd, (long)"", AT_EMPTY_PATH, STATX_TYPE, (long)&st, 0);
  if (err >= 0) *mode = st.stx_mode;
  return err;
}
/* 1 when two open fds are the same file (inode and device), 0 when not. */
static inline long sys_same_file(long a, long b) {
  struct statx x, y;
  long err = sc6(__NR_statx, a, (long)"", AT_EMPTY_PATH, STATX_INO, (long)&x, 0);
  if (err >= 0) err = sc6(__NR_statx, b, (long)"", AT_EMPTY_PATH, STATX_INO, (long)&y, 0);
  if (err < 0) return err;
  return x.stx_ino == y.stx_ino && x.stx_dev_major == y.stx_dev_major && x.stx_dev_minor == y.stx_dev_minor;
}
static inline long sys_read(int fd, void *buf, unsigned long len) { return sc6(__NR_read, fd, (long)buf, (long)len, 0, 0, 0); }
static inline long sys_pidfd_open(long pid) { return sc6(__NR_pidfd_open, pid, 0, 0, 0, 0, 0); }
/* poll with a timeout in milliseconds (< 0: none), through ppoll (aarch64 has no poll). */
static inline long sys_poll(struct pollfd *fds, long count, long timeout_ms) {
  struct __kernel_timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000};
  return sc6(__NR_ppoll, (long)fds, count, timeout_ms < 0 ? 0 : (long)&ts, 0, 8, 0);
}
/* kill(0, sig): every process of the caller's process group. */
static inline long sys_kill_group(int sig) { return sc6(__NR_kill, 0, sig, 0, 0, 0, 0); }
/* fork(): clone with only the exit signal (x86_64 and aarch64 order clone's arguments differently; all zero here). */
static inline long sys_fork(void) { return sc6(__NR_clone, SIGCHLD, 0, 0, 0, 0, 0); }
static inline long sys_execve(const char *path, char **argv, char **envp) { return sc6(__NR_execve, (long)path, (long)argv, (long)envp, 0, 0, 0); }
static inline long sys_wait4(long pid, int *status) { return sc6(__NR_wait4, pid, (long)status, 0, 0, 0, 0); }
static inline long sys_prlimit_core(const struct rlimit *limit) { return sc6(__NR_prlimit64, 0, RLIMIT_CORE, (long)limit, 0, 0, 0); }
/* The message header of sendmsg/recvmsg, as the kernel reads it on 64-bit architectures (struct user_msghdr). */
struct iovec {
  void *base;
  unsigned long len;
};
struct msghdr {
  void *name;
  int namelen;
  struct iovec *iov;
  unsigned long iovlen;
  void *control;
  unsigned long controllen;
  unsigned int flags;
};
struct cmsghdr {
  unsigned long len;
  int level, type;
};
#define SOL_SOCKET 1
#define SCM_RIGHTS 1
#define MSG_CMSG_CLOEXEC 0x40000000
static inline long sys_recvmsg(int fd, struct msghdr *msg, long flags) { return sc6(__NR_recvmsg, fd, (long)msg, flags, 0, 0, 0); }
/* fork() whose child's parent is the caller's parent (CLONE_PARENT): the caller's parent reaps it. */
static inline long sys_fork_sibling(void) { return sc6(__NR_clone, CLONE_PARENT, 0, 0, 0, 0, 0); }
/* Closes every fd from `first` on (Linux 5.9; ENOSYS before). */
static inline long sys_close_from(int first) { return sc6(__NR_close_range, first, ~0U, 0, 0, 0, 0); }
/* Landlock (Linux 5.13) with scopes (6.12, ABI 6): Debian 12's kernel headers predate the scoped field. */
struct landlock_scoped_attr {
  unsigned long long handled_access_fs, handled_access_net, scoped;
};
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
static inline long sys_landlock_create_ruleset(const struct landlock_scoped_attr *attr, unsigned long size, long flags) {
  return sc6(__NR_landlock_create_ruleset, (long)attr, (long)size, flags, 0, 0, 0);
}
static inline long sys_landlock_restrict_self(int fd) { return sc6(__NR_landlock_restrict_self, fd, 0, 0, 0, 0, 0); }
static inline long sys_setsid(void) { return sc6(__NR_setsid, 0, 0, 0, 0, 0, 0); }
static inline long sys_unblock_signals(void) {
  unsigned long none = 0;
  return sc6(__NR_rt_sigprocmask, 2 /* SIG_SETMASK */, (long)&none, 0, sizeof none, 0, 0);
}
static inline long sys_kill_self(int sig) { return sc6(__NR_kill, sc6(__NR_getpid, 0, 0, 0, 0, 0, 0), sig, 0, 0, 0, 0); }

#endif
