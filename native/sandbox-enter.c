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
 * Called only by remux: locally for each stage (src/exec/local.ts), and on SSH hosts, where remux sends
 * it to the long-lived sandbox's holder, for each command list (src/hosts/remote-sandbox.ts):
 *   remux-sandbox-enter [--read PATH | --write FD PATH | --append FD PATH | --dup]... [--env NAME=VALUE]...
 *                       [--report-prefix TEXT] --cwd DIR -- PROGRAM ARGV0 [ARG]...
 *                       [--watch FD GRACE_MS] [--started TEXT]
 *   remux-sandbox-enter --check        exits 0 (can it run from where it is, on a kernel with pidfds?)
 *   remux-sandbox-enter --landlock-abi exits with the kernel's Landlock ABI (0: none; scopes need 6)
 *   remux-sandbox-enter --serve        a stage server for remux-spawner (below)
 * fds on entry: 0-2 the stage's stdio; 3 the report pipe; 4-9 the sandbox's user, mnt, net, ipc, uts
 * and pid namespaces. The environment is the stage's own, or exactly the --env ones when there are any.
 * A namespace the helper is in already is not joined (a shared network: joining it again needs
 * privileges an unprivileged user does not have).
 *
 * Redirections are opened inside the sandbox, in order, as sh does: a path outside the policy's write
 * paths fails there (read-only or absent), never through a link swapped in after remux checked it.
 *
 * Nothing is written to the report pipe when the program was executed. Otherwise one line
 * "[TEXT]WHAT STATUS ERRNO [INDEX]" says what failed (remux words the message), and the helper exits with
 * STATUS: "join" with the index of the namespace (0-5, as on fds 4-9), "caps", "landlock", "fork", "usage",
 * "cwd", "redirect" with the index of the redirection, "fifo" with that index (FIFOs and sockets are
 * refused as targets, as outside the sandbox), "exec".
 * Otherwise the helper exits as the stage did: with its exit code, or killed by the same signal.
 *
 * A PROGRAM without a slash is looked up in the stage's PATH, as execvp does. --started TEXT: the stage
 * writes TEXT and a newline on its stderr just before it executes the program; after that, a program
 * that cannot be executed is the stage's own failure, worded as a shell does (127 not found, 126 not
 * executable), not a report.
 *
 * --serve (one per sandbox: src/exec/sandbox-pool.ts locally, tools/executor.py on SSH hosts): joins the
 * namespaces on fds 4-9 once, then starts stages on request, so that a stage costs one fork instead of an
 * exec of this helper, six setns and a fork. fd 3 is a SOCK_SEQPACKET socket to the asker (remux-spawner,
 * or the resident executor); a request is one
 * message: the stage's fds 0-3 (its stdio and report pipe) as SCM_RIGHTS, and the fields "ARGC", "ENVC",
 * this helper's own command line (ARGC fields from argv[0]) and the stage's environment (ENVC fields), each
 * ended by NUL. The stage is forked with CLONE_PARENT: the asker is its parent, reaps it and reports its
 * status as for a stage it started itself, and the stage runs exactly as it would under the helper (its own
 * session, then run_stage). The answer is a 4-byte int: its pid, or -errno when it could not be forked
 * (ENOMEM: the sandbox's init is gone); the asker then starts the stage the usual way, which reports why.
 * The server exits when the socket closes, or when its fd 0 becomes readable: a pipe remux closes when the
 * sandbox stops (locally), or a pidfd of the sandbox's init (SSH hosts), readable once it ended. It stays
 * outside the sandbox's PID namespace (only its children enter it): nothing inside can see, signal or
 * trace it.
 *
 * --watch FD GRACE_MS (SSH hosts: the wrapper execs the helper, and the helper does what the wrapper's
 * watcher would): EOF on FD (the channel's stdin: remux stopped the command or the connection is gone)
 * sends TERM to the process group, and KILL after GRACE_MS if the stage is still there. When the stage
 * ends, TERM goes to the group too (what it left in the background). FD is not passed to the stage.
 */
#include "serve.h"
#include "syscall.h"

#define REPORT_FD 3
/* Where fail() reports: fd 3, but nowhere while fd 3 is --serve's socket. */
static int report_fd = REPORT_FD;
/* The sandbox shares the host's network namespace (the policy grants network): set by enter_sandbox. */
static int shared_network;
#define FIRST_NS_FD 4
#define NS_COUNT 6

/* The namespace types expected on fds 4-9, and the helper's own namespaces of those types. */
static const long NS_TYPES[NS_COUNT] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWPID};
static const char *const OWN_NS[NS_COUNT] = {"/proc/self/ns/user", "/proc/self/ns/mnt", "/proc/self/ns/net", "/proc/self/ns/ipc", "/proc/self/ns/uts", "/proc/self/ns/pid"};
#define MAX_ENV 64

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

static const char *report_prefix = "";

/* Reports "[TEXT]WHAT STATUS ERRNO [INDEX]" on the report pipe and exits with STATUS; never returns. */
static void fail(const char *what, int status, long err, int index) {
  char line[192];
  char *at = line;
  for (const char *p = report_prefix; *p && at < line + 96; p++) *at++ = *p;
  at = put(at, what);
  *at++ = ' ';
  at = put_int(at, status);
  *at++ = ' ';
  at = put_int(at, err < 0 ? -err : err);
  if (index >= 0) *at++ = ' ', at = put_int(at, index);
  *at++ = '\n';
  if (report_fd >= 0) sys_write(report_fd, line, (unsigned long)(at - line));
  sys_exit(status);
}

static void set_signal(int sig, long handler) {
  struct kernel_sigaction action = {handler, 0, 0, 0};
  sys_rt_sigaction(sig, &action);
}

/* Joins the holder's namespaces. The user namespace that owns the mount namespace comes first (bwrap
 * --disable-userns nests the sandbox's own user namespace one level below it), the sandbox's last. */
static void enter_sandbox(void) {
  int joined[NS_COUNT];
  for (int i = 0; i < NS_COUNT; i++) {
    if (sys_ioctl(FIRST_NS_FD + i, NS_GET_NSTYPE) != NS_TYPES[i]) fail("join", 126, 22 /* EINVAL */, i);
    long own = sys_openat(OWN_NS[i], O_RDONLY | O_CLOEXEC, 0);
    if (own < 0) fail("join", 126, own, i);
    long same = sys_same_file(FIRST_NS_FD + i, own);
    if (same < 0) fail("join", 126, same, i);
    joined[i] = !same;
    sys_close((int)own);
  }
  shared_network = !joined[2];
  long owner = sys_ioctl(FIRST_NS_FD + 1, NS_GET_USERNS);
  if (owner < 0) fail("join", 126, owner, 0);
  long err = sys_setns((int)owner, CLONE_NEWUSER);
  if (err < 0) fail("join", 126, err, 0);
  for (int i = 1; i < NS_COUNT; i++) {
    if (!joined[i]) continue;
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

/*
 * Abstract Unix sockets belong to a network namespace, not to the file system: no mount hides them, and a
 * sandbox that shares the host's network could connect to the host's (X11, D-Bus, an old containerd-shim:
 * CVE-2020-15257). Landlock's scope (Linux 6.12, ABI 6) keeps the stage from connecting to one made outside
 * it; an abstract socket made by an earlier command of the same sandbox is outside it too. On an older
 * kernel they stay reachable, as README says. Once the kernel has the scope, failing to set it is fatal.
 */
static void scope_abstract_sockets(void) {
  if (sys_landlock_create_ruleset(0, 0, LANDLOCK_CREATE_RULESET_VERSION) < 6) return;
  struct landlock_scoped_attr attr = {0, 0, LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET};
  long fd = sys_landlock_create_ruleset(&attr, sizeof attr, 0);
  if (fd < 0) fail("landlock", 126, fd, -1);
  long err = sys_landlock_restrict_self((int)fd);
  sys_close((int)fd);
  if (err < 0) fail("landlock", 126, err, -1);
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
    if ((err = sys_dup3(fd, target, 0)) < 0) fail("redirect", 1, err, index);
    sys_close((int)fd);
  } else if ((err = sys_fcntl(fd, F_SETFD, 0)) < 0) {
    fail("redirect", 1, err, index);
  }
}

/* The command line, parsed before the fork: options run from argv + 1 to `--`. */
static struct {
  const char *cwd, *program, *started;
  char **argv, **envp, **options, **options_end;
  char *env[MAX_ENV + 1];
  int env_count;
  int watch_fd, grace_ms;
} opt = {.watch_fd = -1};

/* How many values follow an option; -1: not an option. */
static int values_of(const char *option) {
  if (streq(option, "--dup")) return 0;
  if (streq(option, "--watch")) return 2;
  if (streq(option, "--read") || streq(option, "--cwd") || streq(option, "--env") || streq(option, "--report-prefix") || streq(option, "--started")) return 1;
  if (streq(option, "--write") || streq(option, "--append")) return 2;
  return -1;
}

static void parse(int argc, char **argv) {
  int i = 1;
  opt.options = argv + 1;
  for (; i < argc && !streq(argv[i], "--"); i++) {
    int values = values_of(argv[i]);
    if (values < 0 || i + values >= argc) fail("usage", 126, 22, i);
    if (streq(argv[i], "--cwd")) opt.cwd = argv[i + 1];
    else if (streq(argv[i], "--report-prefix")) report_prefix = argv[i + 1];
    else if (streq(argv[i], "--started")) opt.started = argv[i + 1];
    else if (streq(argv[i], "--watch")) opt.watch_fd = to_int(argv[i + 1]), opt.grace_ms = to_int(argv[i + 2]);
    else if (streq(argv[i], "--env")) {
      if (opt.env_count == MAX_ENV) fail("usage", 126, 7 /* E2BIG */, i);
      opt.env[opt.env_count++] = argv[i + 1];
    }
    i += values;
  }
  opt.options_end = argv + i;
  if (!opt.cwd || i + 2 >= argc) fail("usage", 126, 22, -1);
  if (opt.env_count > 0) opt.envp = opt.env;
  opt.program = argv[i + 1];
  opt.argv = argv + i + 2;
}

/* A PATH entry and the program's name. */
static char line_buf[4200];

static unsigned long length(const char *s) {
  const char *e = s;
  while (*e) e++;
  return (unsigned long)(e - s);
}

/* Two strings on stderr. */
static void say(const char *a, const char *b) {
  sys_write(2, a, length(a));
  sys_write(2, b, length(b));
}

static const char *env_value(const char *name) {
  for (char **e = opt.envp; e && *e; e++) {
    const char *a = *e, *b = name;
    while (*b && *a == *b) a++, b++;
    if (!*b && *a == '=') return a + 1;
  }
  return 0;
}

/* execve, or execvp's search of PATH for a name without a slash; returns the error that counts (ENOENT
 * only when no directory had it; EACCES when one had it but could not run it). */
static long exec_program(void) {
  const char *p = opt.program;
  while (*p && *p != '/') p++;
  if (*p == '/' || !*opt.program) return sys_execve(opt.program, opt.argv, opt.envp);
  const char *path = env_value("PATH");
  long err = -2, denied = 0;
  unsigned long name = length(opt.program);
  for (const char *dir = path ? path : "/usr/bin:/bin"; *dir;) {
    const char *end = dir;
    while (*end && *end != ':') end++;
    unsigned long len = (unsigned long)(end - dir);
    /* An entry too long for the buffer is skipped, never cut short. */
    if (len + name + 3 <= sizeof line_buf) {
      char *at = line_buf;
      if (len == 0) *at++ = '.';
      for (const char *c = dir; c < end; c++) *at++ = *c;
      *at++ = '/';
      for (const char *n = opt.program; *n; n++) *at++ = *n;
      *at = 0;
      err = sys_execve(line_buf, opt.argv, opt.envp);
      if (err == -13 /* EACCES */) denied = err;
      else if (err != -2 && err != -20 /* ENOTDIR */) return err;
    }
    dir = *end ? end + 1 : end;
  }
  return denied ? denied : -2;
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
  for (char **o = opt.options; o < opt.options_end; o += 1 + values_of(*o)) {
    if (streq(*o, "--read")) redirect(index++, 0, o[1], O_RDONLY);
    else if (streq(*o, "--write")) redirect(index++, to_int(o[1]), o[2], O_WRONLY | O_CREAT | O_TRUNC);
    else if (streq(*o, "--append")) redirect(index++, to_int(o[1]), o[2], O_WRONLY | O_CREAT | O_APPEND);
    else if (streq(*o, "--dup") && (err = sys_dup3(1, 2, 0)) < 0) fail("redirect", 1, err, index); /* --dup: 2>&1 */
    else if (streq(*o, "--dup")) index++;
  }
  drop_capabilities();
  /* After no_new_privs (drop_capabilities), which an unprivileged landlock_restrict_self needs. */
  if (shared_network) scope_abstract_sockets();
  if (opt.started) say(opt.started, "\n");
  err = exec_program();
  if (opt.started) {
    say(opt.program, err == -2 ? ": not found\n" : ": cannot execute\n");
    sys_exit(err == -2 ? 127 : 126);
  }
  fail("exec", err == -2 /* ENOENT */ ? 127 : 126, err, -1);
}


/*
 * --watch: waits for the stage (through a pidfd) and for EOF on the watched fd. Returns the stage's
 * wait status. The helper ignores TERM, so the group's TERM reaches only the others; KILL ends it too.
 */
static int watch(long child) {
  long pidfd = sys_pidfd_open(child);
  if (pidfd < 0) fail("fork", 126, pidfd, -1);
  struct pollfd fds[2] = {{(int)pidfd, POLLIN, 0}, {opt.watch_fd, POLLIN, 0}};
  long count = 2, deadline = -1;
  char buf[256];
  for (;;) {
    long ready = sys_poll(fds, count, deadline);
    if (ready == -4 /* EINTR */) continue;
    if (ready == 0) sys_kill_group(9 /* KILL */);
    if (ready < 0 || fds[0].revents) break;
    if (fds[1].revents && sys_read(opt.watch_fd, buf, sizeof buf) <= 0) {
      sys_kill_group(15 /* TERM */);
      count = 1, deadline = opt.grace_ms;
    }
  }
  int status = 0;
  while (sys_wait4(child, &status) == -4) continue;
  sys_kill_group(15);
  return status;
}

#define SERVE_FD 3

static char request[SERVE_MAX_BYTES];
/* The command line, NULL, the environment, NULL. */
static char *served[SERVE_MAX_FIELDS + 2];

/* Splits a request into served[]; the argument count, or -1 when it is malformed. */
static int split_request(long len) {
  if (len < 1 || request[len - 1] != 0) return -1;
  char *at = request, *end = request + len;
  int counts[2];
  for (int i = 0; i < 2; i++) {
    /* Up to 6 digits (no count is larger), then the NUL. */
    char *digits = at;
    while (at < digits + 6 && *at >= '0' && *at <= '9') at++;
    if (at == digits || *at != 0) return -1;
    counts[i] = to_int(digits);
    if (++at >= end) return -1;
  }
  if (counts[0] < 1 || counts[0] + counts[1] > SERVE_MAX_FIELDS) return -1;
  int n = 0;
  for (int list = 0; list < 2; list++) {
    for (int i = 0; i < counts[list]; i++) {
      if (at >= end) return -1;
      served[n++] = at;
      while (*at++) continue;
    }
    served[n++] = 0;
  }
  return at == end ? counts[0] : -1;
}

/* The served stage, in the sandbox's PID namespace: its fds, its own session, then as under the helper. */
static void run_served(const int *fds, int argc) {
  int parked[SERVED_FDS];
  /* Moved above every target first, so that placing one never overwrites another's source. */
  for (int i = 0; i < SERVED_FDS; i++)
    if ((parked[i] = (int)sys_fcntl(fds[i], F_DUPFD_CLOEXEC, 64)) < 0) sys_exit(126);
  /* The report pipe (3) is the helper's, not the program's: closed when it executes. */
  for (int i = 0; i < SERVED_FDS; i++)
    if (sys_dup3(parked[i], i, i == REPORT_FD ? O_CLOEXEC : 0) < 0) sys_exit(126);
  report_fd = REPORT_FD;
  long err;
  if ((err = sys_setsid()) < 0 || (err = sys_unblock_signals()) < 0) fail("fork", 126, err, -1);
  opt.envp = served + argc + 1;
  parse(argc, served);
  run_stage();
}

static void serve(void) {
  struct pollfd watched[2] = {{SERVE_FD, POLLIN, 0}, {0, POLLIN, 0}};
  for (;;) {
    long ready = sys_poll(watched, 2, -1);
    if (ready == -4 /* EINTR */) continue;
    /* fd 0 readable (EOF of the pipe, or the init's pidfd: the sandbox is gone) or in error: the server ends. */
    if (ready < 0 || watched[1].revents) sys_exit(0);
    union {
      struct cmsghdr header;
      char bytes[sizeof(struct cmsghdr) + SERVED_FDS * sizeof(int)];
    } control;
    struct iovec iov = {request, sizeof request};
    struct msghdr msg = {0, 0, &iov, 1, &control, sizeof control, 0};
    long got = sys_recvmsg(SERVE_FD, &msg, MSG_CMSG_CLOEXEC);
    if (got == -4 /* EINTR */) continue;
    if (got <= 0) sys_exit(0); /* the spawner is gone */
    int fds[SERVED_FDS], count = 0;
    /* At most SERVED_FDS fit: the kernel closes any more it was sent (MSG_CTRUNC, refused below). */
    if (msg.controllen >= sizeof(struct cmsghdr) && control.header.level == SOL_SOCKET && control.header.type == SCM_RIGHTS &&
        control.header.len >= sizeof(struct cmsghdr) && control.header.len <= sizeof control) {
      count = (int)((control.header.len - sizeof(struct cmsghdr)) / sizeof(int));
      for (int i = 0; i < count; i++) fds[i] = ((int *)(control.bytes + sizeof(struct cmsghdr)))[i];
    }
    int argc = (msg.flags & (0x20 /* MSG_TRUNC */ | 0x08 /* MSG_CTRUNC */)) ? -1 : split_request(got);
    int answer = -22; /* EINVAL */
    if (count == SERVED_FDS && argc > 0) answer = (int)sys_fork_sibling();
    if (answer == 0) run_served(fds, argc);
    for (int i = 0; i < count; i++) sys_close(fds[i]);
    if (sys_write(SERVE_FD, &answer, sizeof answer) != sizeof answer) sys_exit(0);
  }
}

int remux_main(int argc, char **argv, char **envp) {
  if (argc == 2 && streq(argv[1], "--check")) sys_exit(sys_pidfd_open(sc6(__NR_getpid, 0, 0, 0, 0, 0, 0)) < 0 ? 1 : 0);
  if (argc == 2 && streq(argv[1], "--landlock-abi")) {
    long abi = sys_landlock_create_ruleset(0, 0, LANDLOCK_CREATE_RULESET_VERSION);
    sys_exit(abi < 0 ? 0 : (int)abi);
  }
  if (argc == 2 && streq(argv[1], "--serve")) {
    /* Dies with remux, like the stages. Nothing to report on: a failure to join ends the server. */
    report_fd = -1;
    if (sys_prctl(PR_SET_PDEATHSIG, 9, 0) < 0 || sys_fcntl(SERVE_FD, F_SETFD, FD_CLOEXEC) < 0) sys_exit(126);
    enter_sandbox();
    /* Only its own fds (0-3) reach the stages it forks, whatever its parent left open. */
    sys_close_from(SERVE_FD + 1);
    serve();
  }
  opt.envp = envp;
  parse(argc, argv);
  long err;
  /* Dies with remux: the sandbox's init then takes the stage with it. */
  if ((err = sys_prctl(PR_SET_PDEATHSIG, 9, 0)) < 0) fail("fork", 126, err, -1);
  if ((err = sys_fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC)) < 0) fail("fork", 126, err, -1);
  if (opt.watch_fd >= 0 && (err = sys_fcntl(opt.watch_fd, F_SETFD, FD_CLOEXEC)) < 0) fail("fork", 126, err, -1);
  enter_sandbox();
  for (int s = 0; s < RELAYED_COUNT; s++) set_signal(RELAYED[s], SIG_IGN);

  long child = sys_fork();
  if (child < 0) fail("fork", 126, child, -1);
  if (child == 0) run_stage();
  sys_close(REPORT_FD);
  int status = 0;
  if (opt.watch_fd >= 0) {
    status = watch(child);
  } else {
    while ((err = sys_wait4(child, &status)) == -4 /* EINTR */) continue;
    if (err < 0) sys_exit(126);
  }
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
