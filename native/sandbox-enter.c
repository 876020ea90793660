/*
 * remux-sandbox-enter: runs one pipeline stage inside a long-lived bubblewrap sandbox.
 *
 * Starting bwrap costs several milliseconds per command (new namespaces, a new mount tree). remux keeps
 * one sandbox per (owner, policy layout) alive instead (src/exec/sandbox-pool.ts): a bwrap whose only
 * program waits on a pipe. Each stage is spawned as this helper, which joins that sandbox's namespaces,
 * forks the stage into its PID namespace, and execs the program with no capabilities. The kernel
 * then enforces the policy's mounts at every open(), as with a fresh bwrap, for about one fork more
 * than an unsandboxed spawn (built static: no dynamic loading either).
 *
 * Called only by remux:
 *   remux-sandbox-enter [--tmp DIR] [--read PATH | --write FD PATH | --append FD PATH | --dup]...
 *                       --cwd DIR -- PROGRAM ARGV0 [ARG]...
 * fds on entry: 0-2 the stage's stdio; 3 the report pipe; 4-9 the sandbox's user, mnt, net, ipc, uts
 * and pid namespaces. The environment is the stage's own.
 *
 * --tmp DIR: the stage gets its own mount namespace with DIR (inside the sandbox) bound on /tmp, so
 * the stages of one command share a /tmp that no other command sees. Redirections are opened inside
 * the sandbox, in order, as sh does: a path outside the policy's write paths fails there (read-only or
 * absent), never through a link swapped in after remux checked it.
 *
 * Nothing is written to the report pipe when the program was executed. Otherwise one line
 * "KIND STATUS message" says what failed (KIND: sandbox, cwd, redirect, not_found, not_executable,
 * spawn) and the helper exits with STATUS. Otherwise the helper exits as the stage did: with its exit
 * code, or killed by the same signal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPORT_FD 3
#define FIRST_NS_FD 4

extern char **environ;

static const struct {
  const char *name;
  int type;
} NAMESPACES[] = {
    {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"net", CLONE_NEWNET},
    {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS}, {"pid", CLONE_NEWPID},
};
#define NS_COUNT (sizeof NAMESPACES / sizeof NAMESPACES[0])

static const int HANDLED_SIGNALS[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM};
#define HANDLED_COUNT (sizeof HANDLED_SIGNALS / sizeof HANDLED_SIGNALS[0])

/* Reports a failure on the report pipe and exits with `status`; never returns. */
static void fail(const char *kind, int status, const char *fmt, ...) {
  char line[4096];
  int n = snprintf(line, sizeof line, "%s %d ", kind, status);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  size_t len = strnlen(line, sizeof line - 2);
  line[len++] = '\n';
  ssize_t ignored = write(REPORT_FD, line, len);
  (void)ignored;
  _exit(status);
}

static const char *errname(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : strerror(err);
}

/* Joins the holder's namespaces. The user namespace that owns the mount namespace comes first (bwrap
 * --disable-userns nests the sandbox's own user namespace one level below it), the sandbox's last. */
static void enter_sandbox(void) {
  for (size_t i = 0; i < NS_COUNT; i++) {
    int fd = FIRST_NS_FD + (int)i;
    int type = ioctl(fd, NS_GET_NSTYPE);
    if (type != NAMESPACES[i].type) fail("sandbox", 126, "fd %d is not a %s namespace", fd, NAMESPACES[i].name);
  }
  int owner = ioctl(FIRST_NS_FD + 1, NS_GET_USERNS);
  if (owner < 0) fail("sandbox", 126, "cannot find the owner of the sandbox's mount namespace: %s", errname(errno));
  struct stat a, b;
  if (fstat(owner, &a) != 0 || fstat(FIRST_NS_FD, &b) != 0) fail("sandbox", 126, "fstat: %s", errname(errno));
  if (setns(owner, CLONE_NEWUSER) != 0) fail("sandbox", 126, "cannot join the sandbox's user namespace: %s", errname(errno));
  close(owner);
  for (size_t i = 1; i < NS_COUNT; i++) {
    if (setns(FIRST_NS_FD + (int)i, NAMESPACES[i].type) != 0) {
      fail("sandbox", 126, "cannot join the sandbox's %s namespace: %s", NAMESPACES[i].name, errname(errno));
    }
  }
  if (a.st_ino != b.st_ino && setns(FIRST_NS_FD, CLONE_NEWUSER) != 0) {
    fail("sandbox", 126, "cannot join the sandbox's inner user namespace: %s", errname(errno));
  }
  for (size_t i = 0; i < NS_COUNT; i++) close(FIRST_NS_FD + (int)i);
}

/* No capabilities in any set, none to regain (bounding set empty, no new privileges): bwrap --cap-drop ALL. */
static void drop_capabilities(void) {
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) fail("sandbox", 126, "cannot drop capability %d: %s", cap, errname(errno));
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    fail("sandbox", 126, "cannot clear ambient capabilities: %s", errname(errno));
  }
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &header, data) != 0) fail("sandbox", 126, "cannot drop capabilities: %s", errname(errno));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("sandbox", 126, "cannot set no_new_privs: %s", errname(errno));
}

/* A private /tmp for this command: DIR (made by remux inside the sandbox's own /tmp) bound on /tmp. */
static void private_tmp(const char *dir) {
  if (unshare(CLONE_NEWNS) != 0) fail("sandbox", 126, "cannot make a mount namespace: %s", errname(errno));
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("sandbox", 126, "cannot make mounts private: %s", errname(errno));
  if (mount(dir, "/tmp", NULL, MS_BIND | MS_REC, NULL) != 0) fail("sandbox", 126, "cannot bind %s on /tmp: %s", dir, errname(errno));
}

/* One redirection, performed like sh does in the child: open, move onto its fd. */
static void redirect(int target, const char *path, int flags) {
  const char *purpose = target == 0 ? "reading" : "writing";
  /* O_NONBLOCK: a FIFO must not block the open; remux refuses FIFOs and sockets as redirect targets. */
  int fd = open(path, flags | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0666);
  if (fd < 0) fail("redirect", 1, "cannot open %s for %s: %s", path, purpose, errname(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) fail("redirect", 1, "cannot open %s for %s: %s", path, purpose, errname(errno));
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
    fail("redirect", 1, "cannot open %s for %s: FIFOs and sockets are not supported as redirect targets", path, purpose);
  }
  if (fcntl(fd, F_SETFL, flags & O_APPEND) != 0 || dup2(fd, target) < 0) {
    fail("redirect", 1, "cannot open %s for %s: %s", path, purpose, errname(errno));
  }
  close(fd);
}

static void exec_failed(const char *name, int err) {
  if (err == ENOENT) fail("not_found", 127, "%s: cannot execute: %s", name, errname(err));
  fail(err == EACCES ? "not_executable" : "spawn", 126, "%s: cannot execute: %s", name, errname(err));
}

/* The stage itself: runs in the sandbox's PID namespace. */
static void run_stage(char **argv, int first_redirect, int redirect_end, const char *tmp, const char *cwd) {
  /* Dies with the helper, whatever killed it. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail("sandbox", 126, "prctl: %s", errname(errno));
  for (size_t i = 0; i < HANDLED_COUNT; i++) signal(HANDLED_SIGNALS[i], SIG_DFL);
  if (tmp) private_tmp(tmp);
  if (chdir(cwd) != 0) fail("cwd", 125, "cannot use working directory %s inside the sandbox: %s", cwd, errname(errno));
  for (int i = first_redirect; i < redirect_end; i++) {
    if (strcmp(argv[i], "--read") == 0) redirect(0, argv[++i], O_RDONLY);
    else if (strcmp(argv[i], "--write") == 0 || strcmp(argv[i], "--append") == 0) {
      int append = argv[i][2] == 'a';
      int target = atoi(argv[++i]);
      redirect(target, argv[++i], O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC));
    } else if (strcmp(argv[i], "--dup") == 0) {
      if (dup2(1, 2) < 0) fail("redirect", 1, "2>&1: %s", errname(errno));
    }
  }
  drop_capabilities();
}

/* The command line, parsed before the vfork (globals: nothing here lives in a frame the child shares). */
static struct {
  const char *tmp, *cwd, *program;
  char **argv;
  int first_redirect, redirect_end;
} opt;

static void parse(int argc, char **argv) {
  int i = 1;
  opt.first_redirect = opt.redirect_end = -1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    int start = i;
    if (strcmp(argv[i], "--tmp") == 0 && i + 1 < argc) opt.tmp = argv[++i];
    else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc) opt.cwd = argv[++i];
    else if (strcmp(argv[i], "--read") == 0 && i + 1 < argc) i += 1;
    else if ((strcmp(argv[i], "--write") == 0 || strcmp(argv[i], "--append") == 0) && i + 2 < argc) i += 2;
    else if (strcmp(argv[i], "--dup") != 0) fail("spawn", 126, "remux-sandbox-enter: bad argument %s", argv[i]);
    if (strncmp(argv[start], "--tmp", 6) != 0 && strcmp(argv[start], "--cwd") != 0) {
      if (opt.first_redirect < 0) opt.first_redirect = start;
      opt.redirect_end = i + 1;
    }
  }
  if (opt.cwd == NULL || i + 2 >= argc) fail("spawn", 126, "remux-sandbox-enter: usage: [options] --cwd DIR -- PROGRAM ARGV0 [ARG]...");
  if (opt.first_redirect < 0) opt.first_redirect = opt.redirect_end = 0;
  opt.program = argv[i + 1];
  opt.argv = argv + i + 2;
}

int main(int argc, char **argv) {
  parse(argc, argv);
  /* Dies with remux: the sandbox's init then takes the stage with it. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail("sandbox", 126, "prctl: %s", errname(errno));
  if (fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC) != 0) fail("sandbox", 126, "report pipe: %s", errname(errno));
  enter_sandbox();
  /* The stage gets remux's signals (they go to the whole process group); this process only relays its status. */
  for (size_t s = 0; s < HANDLED_COUNT; s++) signal(HANDLED_SIGNALS[s], SIG_IGN);

  /* vfork: no page tables to copy; this process only waits until the child has exec'ed or exited. The
   * child touches nothing of ours but errno, and leaves through execve() or _exit() (fail()). */
  pid_t child = vfork();
  if (child < 0) fail("spawn", 126, "vfork: %s", errname(errno));
  if (child == 0) {
    run_stage(argv, opt.first_redirect, opt.redirect_end, opt.tmp, opt.cwd);
    execve(opt.program, opt.argv, environ);
    exec_failed(opt.argv[0], errno);
  }
  close(REPORT_FD);
  int status;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) _exit(126);
  }
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  /* Killed by a signal: die of the same one, without a core file of our own. */
  int sig = WTERMSIG(status);
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  raise(sig);
  _exit(128 + sig);
}
