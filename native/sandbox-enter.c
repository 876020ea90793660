/*
 * remux-sandbox-enter: runs one pipeline stage inside a long-lived bubblewrap sandbox.
 *
 * Starting bwrap costs several milliseconds per command (new namespaces, a new mount tree). remux keeps
 * one sandbox per (owner, policy layout) alive instead (src/exec/sandbox-pool.ts): a bwrap whose only
 * program waits on a pipe. Each stage is spawned as this helper, which joins that sandbox's namespaces,
 * forks the stage into its PID namespace, and execs the program with no capabilities. The kernel then
 * enforces the policy's mounts at every open(), as with a fresh bwrap.
 *
 * It runs for every sandboxed stage, so it is built without a C library (raw system calls, see
 * syscall.h): its exec costs about 0.07 ms, against 0.48 ms for the same program linked statically
 * with glibc (measured here).
 *
 * Called only by remux (src/exec/local.ts):
 *   remux-sandbox-enter [--read PATH | --write FD PATH | --append FD PATH | --dup]... --cwd DIR --
 *                       PROGRAM ARGV0 [ARG]...
 * fds on entry: 0-2 the stage's stdio; 3 the report pipe; 4-9 the sandbox's user, mnt, net, ipc, uts
 * and pid namespaces. The environment is the stage's own.
 *
 * Redirections are opened inside the sandbox, in order, as sh does: a path outside the policy's write
 * paths fails there (read-only or absent), never through a link swapped in after remux checked it.
 *
 * Nothing is written to the report pipe when the program was executed. Otherwise one line
 * "WHAT STATUS ERRNO [INDEX]" says what failed (remux words the message), and the helper exits with
 * STATUS: "join" with the index of the namespace (0-5, as on fds 4-9), "caps", "fork", "usage",
 * "cwd", "redirect" with the index of the redirection, "fifo" with that index (FIFOs and sockets are
 * refused as targets, as outside the sandbox), "exec".
 * Otherwise the helper exits as the stage did: with its exit code, or killed by the same signal.
 */
#include "syscall.h"

#define REPORT_FD 3
#define FIRST_NS_FD 4
#define NS_COUNT 6

/* The namespace types expected on fds 4-9. */
static const long NS_TYPES[NS_COUNT] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWPID};

/* Signals remux sends to the stage's process group: the helper ignores them and relays the stage's status. */
static const int RELAYED[] = {1 /* HUP */, 2 /* INT */, 3 /* QUIT */, 10 /* USR1 */, 12 /* USR2 */, 13 /* PIPE */, 14 /* ALRM */, 15 /* TERM */};
#define RELAYED_COUNT (int)(sizeof RELAYED / sizeof RELAYED[0])

static int streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

static int to_int(const char *s) {
  int n = 0;
  while (*s >= '0' && *s <= '9') n = n * 10 + (*s++ - '0');
  return n;
}

static char *put(char *at, const char *s) {
  while (*s) *at++ = *s++;
  return at;
}

static char *put_int(char *at, long n) {
  char digits[24];
  int len = 0;
  if (n < 0) *at++ = '-', n = -n;
  do digits[len++] = (char)('0' + n % 10), n /= 10;
  while (n > 0);
  while (len > 0) *at++ = digits[--len];
  return at;
}

/* Reports "WHAT STATUS ERRNO [INDEX]" on the report pipe and exits with STATUS; never returns. */
static void fail(const char *what, int status, long err, int index) {
  char line[96];
  char *at = put(line, what);
  *at++ = ' ';
  at = put_int(at, status);
  *at++ = ' ';
  at = put_int(at, err < 0 ? -err : err);
  if (index >= 0) *at++ = ' ', at = put_int(at, index);
  *at++ = '\n';
  sys_write(REPORT_FD, line, (unsigned long)(at - line));
  sys_exit(status);
}

static void set_signal(int sig, long handler) {
  struct kernel_sigaction action = {handler, 0, 0, 0};
  sys_rt_sigaction(sig, &action);
}

/* Joins the holder's namespaces. The user namespace that owns the mount namespace comes first (bwrap
 * --disable-userns nests the sandbox's own user namespace one level below it), the sandbox's last. */
static void enter_sandbox(void) {
  for (int i = 0; i < NS_COUNT; i++) {
    if (sys_ioctl(FIRST_NS_FD + i, NS_GET_NSTYPE) != NS_TYPES[i]) fail("join", 126, 22 /* EINVAL */, i);
  }
  long owner = sys_ioctl(FIRST_NS_FD + 1, NS_GET_USERNS);
  if (owner < 0) fail("join", 126, owner, 0);
  long err = sys_setns((int)owner, CLONE_NEWUSER);
  if (err < 0) fail("join", 126, err, 0);
  for (int i = 1; i < NS_COUNT; i++) {
    err = sys_setns(FIRST_NS_FD + i, NS_TYPES[i]);
    if (err < 0) fail("join", 126, err, i);
  }
  /* EINVAL: the sandbox's user namespace is the owner itself (no nesting): already joined. */
  err = sys_setns(FIRST_NS_FD, CLONE_NEWUSER);
  if (err < 0 && err != -22) fail("join", 126, err, 0);
  sys_close((int)owner);
  for (int i = 0; i < NS_COUNT; i++) sys_close(FIRST_NS_FD + i);
}

/* No capabilities in any set, none to regain (bounding set empty, no new privileges): bwrap --cap-drop ALL. */
static void drop_capabilities(void) {
  long err;
  for (long cap = 0; sys_prctl(PR_CAPBSET_READ, cap, 0) >= 0; cap++) {
    if ((err = sys_prctl(PR_CAPBSET_DROP, cap, 0)) < 0) fail("caps", 126, err, (int)cap);
  }
  if ((err = sys_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0)) < 0 && err != -22) fail("caps", 126, err, -1);
  cap_header_t header = {_LINUX_CAPABILITY_VERSION_3, 0};
  cap_data_t data[_LINUX_CAPABILITY_U32S_3] = {{0, 0, 0}, {0, 0, 0}};
  if ((err = sys_capset(&header, data)) < 0) fail("caps", 126, err, -1);
  if ((err = sys_prctl(PR_SET_NO_NEW_PRIVS, 1, 0)) < 0) fail("caps", 126, err, -1);
}

/* One redirection, performed like sh does in the child: open, move onto its fd. */
static void redirect(int index, int target, const char *path, long flags) {
  /* O_NONBLOCK: a FIFO must not block the open; FIFOs and sockets are refused below, as outside the sandbox. */
  long fd = sys_openat(path, flags | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0666);
  if (fd < 0) fail("redirect", 1, fd, index);
  unsigned short mode = 0;
  long err = sys_fd_type(fd, &mode);
  if (err < 0) fail("redirect", 1, err, index);
  if ((mode & S_IFMT) == S_IFIFO || (mode & S_IFMT) == S_IFSOCK) fail("fifo", 1, 0, index);
  if ((err = sys_fcntl(fd, F_SETFL, flags & O_APPEND)) < 0) fail("redirect", 1, err, index);
  if (fd != target) {
    if ((err = sys_dup3(fd, target)) < 0) fail("redirect", 1, err, index);
    sys_close((int)fd);
  } else if ((err = sys_fcntl(fd, F_SETFD, 0)) < 0) {
    fail("redirect", 1, err, index);
  }
}

/* The command line, parsed before the fork. */
static struct {
  const char *cwd, *program;
  char **argv, **envp;
  char **redirects, **redirects_end;
} opt;

static void parse(int argc, char **argv) {
  int i = 1;
  for (; i < argc && !streq(argv[i], "--"); i++) {
    char **start = argv + i;
    if (streq(argv[i], "--cwd") && i + 1 < argc) opt.cwd = argv[++i];
    else if (streq(argv[i], "--read") && i + 1 < argc) i += 1;
    else if ((streq(argv[i], "--write") || streq(argv[i], "--append")) && i + 2 < argc) i += 2;
    else if (!streq(argv[i], "--dup")) fail("usage", 126, 22, i);
    if (!streq(*start, "--cwd")) {
      if (!opt.redirects) opt.redirects = start;
      opt.redirects_end = argv + i + 1;
    }
  }
  if (!opt.cwd || i + 2 >= argc) fail("usage", 126, 22, -1);
  opt.program = argv[i + 1];
  opt.argv = argv + i + 2;
}

/* The stage itself, in the sandbox's PID namespace: its cwd, redirections, no capabilities, exec. */
static void run_stage(void) {
  long err;
  /* Dies with the helper, whatever killed it. */
  if ((err = sys_prctl(PR_SET_PDEATHSIG, 9 /* SIGKILL */, 0)) < 0) fail("fork", 126, err, -1);
  /* An ignored signal stays ignored across exec: the stage gets the default dispositions back. */
  for (int s = 0; s < RELAYED_COUNT; s++) set_signal(RELAYED[s], SIG_DFL);
  if ((err = sys_chdir(opt.cwd)) < 0) fail("cwd", 125, err, -1);
  int index = 0;
  for (char **r = opt.redirects; r && r < opt.redirects_end; r++, index++) {
    if (streq(*r, "--read")) redirect(index, 0, *++r, O_RDONLY);
    else if (streq(*r, "--write")) r++, redirect(index, to_int(*r), r[1], O_WRONLY | O_CREAT | O_TRUNC), r++;
    else if (streq(*r, "--append")) r++, redirect(index, to_int(*r), r[1], O_WRONLY | O_CREAT | O_APPEND), r++;
    else if ((err = sys_dup3(1, 2)) < 0) fail("redirect", 1, err, index); /* --dup: 2>&1 */
  }
  drop_capabilities();
  err = sys_execve(opt.program, opt.argv, opt.envp);
  fail("exec", err == -2 /* ENOENT */ ? 127 : 126, err, -1);
}

int remux_main(int argc, char **argv, char **envp) {
  opt.envp = envp;
  parse(argc, argv);
  long err;
  /* Dies with remux: the sandbox's init then takes the stage with it. */
  if ((err = sys_prctl(PR_SET_PDEATHSIG, 9, 0)) < 0) fail("fork", 126, err, -1);
  if ((err = sys_fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC)) < 0) fail("fork", 126, err, -1);
  enter_sandbox();
  for (int s = 0; s < RELAYED_COUNT; s++) set_signal(RELAYED[s], SIG_IGN);

  long child = sys_fork();
  if (child < 0) fail("fork", 126, child, -1);
  if (child == 0) run_stage();
  sys_close(REPORT_FD);
  int status = 0;
  while ((err = sys_wait4(child, &status)) == -4 /* EINTR */) continue;
  if (err < 0) sys_exit(126);
  if ((status & 0x7f) == 0) sys_exit((status >> 8) & 0xff); /* exited */
  /* Killed by a signal: die of the same one, without a core file of our own. */
  int sig = status & 0x7f;
  struct rlimit none = {0, 0};
  sys_prlimit_core(&none);
  set_signal(sig, SIG_DFL);
  sys_kill_self(sig);
  sys_exit(128 + sig);
  return 0;
}
