/*
 * remux-spawner: starts the stages of remux's pipelines, so that the daemon never forks itself per command.
 *
 * Node's child_process.spawn forks the whole calling process (libuv 1.46), which costs the daemon about
 * 2 ms per stage, growing with its memory. The daemon starts this small program once (src/exec/spawner.ts)
 * and asks it to start each pipeline; forking it costs a few tens of microseconds.
 *
 * Channels (set up by Node):
 *   fd 0  requests, each a little-endian u32 length and then NUL-terminated fields (below);
 *   fd 3  Node's IPC channel (NODE_CHANNEL_FD): JSON lines to Node. A pipe end Node must read or write
 *         travels with its line as SCM_RIGHTS, as Node's own handle passing does ("NODE_HANDLE" of type
 *         "net.Native"), so it arrives as a handle Node wraps in a net.Socket. What Node writes there
 *         (its acknowledgements of handles) is read and dropped.
 * The spawner exits when either channel closes (remux ended, however: kill -9 included), and kills the
 * process groups of the stages still running first: nothing remux started outlives it.
 *
 * A request: VERB ID, and for the verbs `run` and `hold`: CWD NENV ENV... NSTAGES, then for each stage
 * MODE, and unless MODE is "-" (a stage that does not run; its pipes are still made and closed, as its
 * neighbours expect):
 *   PROGRAM NARGV ARGV... NOPEN [FD FLAGS PATH]...
 * `run` starts the pipeline and reports it. `hold` prepares it while remux writes the action's audit
 * begin: each stage is forked and set up, then waits before its exec; `go ID` lets the stages execute and
 * reports them as `run` does, `drop ID` kills them (reported as not started: ECANCELED). No stage of a
 * held pipeline runs its program before its go. Stages sent to a stage server ('v', 'z') are not held.
 * `grab ID PID` takes copies of process PID's fds 0 and 1 (pidfd_getfd: the kernel's ptrace check
 * applies; `remux mcp --stdio` names itself and allows us): remux then serves its MCP client directly.
 * MODE has four characters: where fds 0, 1 and 2 go, then what fd 3 is:
 *   r  a report pipe (the sandbox enter helper's, native/sandbox-enter.c)        -  nothing
 *   z  a socket to us: the stage is a stage server (remux-sandbox-enter --serve), known by the key in the
 *      next field (after MODE), a number remux never uses twice
 *   v  a report pipe, and the next field is the key of a running stage server: the stage (the helper's
 *      command line) is sent to it, which costs one fork inside the sandbox instead of an exec of the
 *      helper, its setns and its fork. The server joined the namespaces the stage's opens onto fds 4-9
 *      give, so those are not made. When the server cannot take it (gone, the sandbox's init gone, a
 *      request too large), the stage starts as with 'r'.
 *   c  a new pipe to the caller: its other end goes to Node      p  the previous stage's pipe (fd 0)
 *   x  the pipe to the next stage (fds 1, 2)                      n  /dev/null
 *   d  a duplicate of fd 1 (fd 2: 2>&1)                           o  set by one of the opens
 * Each open is performed in the child before the fds are placed (PATH is usually /proc/PID/fd/N: a file or
 * namespace Node holds open, reopened). Every stage starts in its own session and process group, with the
 * default signal dispositions and an empty signal mask, in CWD, with exactly the environment ENV, and is
 * killed if the spawner dies (PR_SET_PDEATHSIG).
 *
 * To Node:
 *   {"cmd":"NODE_HANDLE","type":"net.Native","msg":{"spawner":"fd","id":ID,"stage":I,"fd":F}}  + the fd
 *   {"spawner":"started","id":ID,"pids":[...],"errors":[...]}   pid 0: not run; errors: errno of a failed start
 *   {"spawner":"exit","id":ID,"stage":I,"status":WAIT_STATUS,"report":"..."}   report: what fd 3 received
 *   {"spawner":"grabbed","id":ID,"error":ERRNO}   after the fd lines (stage 0, fds 0 and 1) when ERRNO is 0
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serve.h"

#define IN_FD 0
#define NODE_FD 3
/* Where the child parks its fds before placing them on 0-9 (above any target). */
#define PARK_FD 64
#define MAX_TARGET 9
#define MAX_OPENS 16

/* A running stage: what its exit is reported as. */
struct child {
  pid_t pid;
  long id;
  int stage;
  int report_fd;
};

static struct child *children;
static size_t child_count, child_cap;
static int devnull;
static pid_t spawner_pid;

static void orphaned(void);

/* Running stage servers: our end of each one's socket. */
struct server {
  long key;
  pid_t pid;
  int sock;
};
static struct server *servers;
static size_t server_count, server_cap;
/* A server that does not answer within this is dropped (it has only a fork to make). */
#define SERVE_TIMEOUT_MS 5000

/* A stage of a pipeline being started: what is reported to Node once it has executed. */
struct started {
  pid_t pid; /* 0: not started (err says why, 0 when it was not asked for) */
  int err;
  int caller[3], report_r;
  /* Held stages: the pipe whose byte lets it execute, and the one it reports its exec on. */
  int go_w, status_r;
  /* A held stage reaped before its go (it failed its setup, or was killed). */
  int ended;
};

/* A pipeline prepared by `hold`, waiting for its go or drop. */
struct held {
  long id, n;
  struct started *stages;
  struct held *next;
};
static struct held *held_list;

static void die(const char *what) {
  fprintf(stderr, "remux-spawner: %s: %s\n", what, strerror(errno));
  exit(70);
}

/* Writes a whole buffer to Node, with fd (>= 0) attached. */
static void send_line(const char *text, size_t len, int fd) {
  struct iovec iov = {(void *)text, len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  while (iov.iov_len > 0) {
    ssize_t n = sendmsg(NODE_FD, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) orphaned(); /* remux is gone */
    if (n < 0) die("writing to remux");
    iov.iov_base = (char *)iov.iov_base + n;
    iov.iov_len -= (size_t)n;
    msg.msg_control = NULL, msg.msg_controllen = 0; /* the fd went with the first bytes */
  }
}

/* The fields of a request, read in order. */
struct fields {
  char *at, *end;
  int bad;
};

static char *next_field(struct fields *f) {
  if (f->at >= f->end) {
    f->bad = 1;
    return "";
  }
  char *s = f->at;
  char *nul = memchr(s, 0, (size_t)(f->end - s));
  if (!nul) {
    f->bad = 1;
    return "";
  }
  f->at = nul + 1;
  return s;
}

static long next_number(struct fields *f, long max) {
  char *s = next_field(f), *end;
  long n = strtol(s, &end, 10);
  if (*s == 0 || *end != 0 || n < 0 || n > max) f->bad = 1;
  return f->bad ? 0 : n;
}

/* A count of fields that follow: each takes a byte at least, so the request's size bounds it. */
static long next_count(struct fields *f) {
  return next_number(f, f->end - f->at);
}

/* A list of fields: its count, then as many fields, collected into a NULL-terminated array. */
static char **next_list(struct fields *f) {
  long n = next_count(f);
  char **list = calloc((size_t)n + 1, sizeof *list);
  if (!list) die("memory");
  for (long i = 0; i < n; i++) list[i] = next_field(f);
  return list;
}

struct open_spec {
  int target, flags;
  const char *path;
};

struct stage {
  char mode[5];
  /* 'z': its key as a stage server; 'v': the key of the server to send it to. */
  long key;
  const char *program;
  char **argv;
  struct open_spec opens[MAX_OPENS];
  int open_count;
  /* Filled while starting: the child's fds 0-2 and the report pipe's write end (-1: none). */
  int fd[3], report_w, report_r;
  /* Our ends of its caller pipes, sent to Node. */
  int caller[3];
  /* 'z': our end of the server's socket. */
  int server;
};

/*
 * The child: places its fds, joins its own session, executes. Writes errno on err_fd if that fails.
 * go_fd >= 0 (held): executes only once a byte arrives there; exits without executing otherwise.
 */
static void run_child(const char *cwd, struct stage *s, char **env, int err_fd, int go_fd) {
  int parked[3 + 1 + MAX_OPENS], targets[3 + 1 + MAX_OPENS], count = 0;
  /* The stage dies with the spawner even when a kill -9 takes it before 'started' tells remux the
     stage's pid (remux then kills the rest of each group it knows), and so does a child still in one of
     its opens (a FIFO with no writer), which would otherwise hold the spawner's channels open. An exec
     of a set-user-ID program (sudo) clears this; such a stage is left to remux's own kill. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != spawner_pid) goto failed;
  /* Above every target, so that placing the stage's fds (4-9 included) never closes them. */
  int moved = fcntl(err_fd, F_DUPFD_CLOEXEC, PARK_FD);
  if (moved < 0) goto failed;
  err_fd = moved;
  if (go_fd >= 0 && (go_fd = fcntl(go_fd, F_DUPFD_CLOEXEC, PARK_FD)) < 0) goto failed;
  for (int i = 0; i < s->open_count; i++) {
    int fd = open(s->opens[i].path, s->opens[i].flags | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) goto failed;
    targets[count] = s->opens[i].target;
    parked[count++] = fd;
  }
  for (int i = 0; i < 3; i++) {
    if (s->fd[i] < 0) continue;
    targets[count] = i;
    parked[count++] = s->fd[i];
  }
  if (s->report_w >= 0) targets[count] = 3, parked[count++] = s->report_w;
  /* Moved above every target first, so that placing one never overwrites another's source. */
  for (int i = 0; i < count; i++)
    if ((parked[i] = fcntl(parked[i], F_DUPFD_CLOEXEC, PARK_FD)) < 0) goto failed;
  for (int i = 0; i < count; i++)
    if (dup2(parked[i], targets[i]) < 0) goto failed;
  if (s->mode[2] == 'd' && dup2(1, 2) < 0) goto failed;
  if (setsid() < 0) goto failed;
  if (chdir(cwd) < 0) goto failed;
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (go_fd >= 0) {
    char go;
    ssize_t n;
    while ((n = read(go_fd, &go, 1)) < 0 && errno == EINTR) continue;
    if (n != 1) _exit(127); /* dropped, or the spawner is gone: nothing runs */
  }
  execve(s->program, s->argv, env);
failed:;
  int err = errno;
  (void)!write(err_fd, &err, sizeof err);
  _exit(127);
}

static int new_pipe(int fds[2]) {
  return pipe2(fds, O_CLOEXEC);
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/*
 * Waits for a stage's exec: EOF on its status pipe (close-on-exec) means it executed; otherwise it
 * wrote errno and exits (reaped here unless `reaped`). Sets st->pid to 0 and st->err when it did not run.
 */
static void await_exec(struct started *st, int reaped) {
  ssize_t n;
  while ((n = read(st->status_r, &st->err, sizeof st->err)) < 0 && errno == EINTR) continue;
  close_fd(&st->status_r);
  if (n > 0) {
    if (!reaped)
      while (waitpid(st->pid, NULL, 0) < 0 && errno == EINTR) continue;
    st->pid = 0;
  } else if (reaped) {
    /* Gone before its exec without saying why: killed while it waited for its go. */
    st->pid = 0, st->err = ECANCELED;
  } else {
    st->err = 0;
  }
}

/* Forks one stage into st (pid 0 with err set on failure). `hold`: it waits for its go (go_w) before its exec. */
static void start_stage(const char *cwd, struct stage *s, char **env, struct started *st, int hold) {
  int status_pipe[2], go_pipe[2] = {-1, -1};
  if (pipe2(status_pipe, O_CLOEXEC) < 0) return (void)(st->err = errno);
  if (hold && pipe2(go_pipe, O_CLOEXEC) < 0) {
    st->err = errno;
    close(status_pipe[0]), close(status_pipe[1]);
    return;
  }
  /* vfork: the spawner waits for the exec anyway, and sharing its memory until then spares copying its
     page tables (about a fifth of a short stage's start). run_child only makes system calls and never
     returns, as a vfork child must. A held stage forks: the spawner goes on while it waits. */
  pid_t pid = hold ? fork() : vfork();
  if (pid == 0) {
    if (hold) close(go_pipe[1]); /* fork, not vfork: this closes the child's copy only */
    run_child(cwd, s, env, status_pipe[1], go_pipe[0]);
  }
  close(status_pipe[1]);
  if (hold) close(go_pipe[0]);
  if (pid < 0) {
    st->err = errno;
    close(status_pipe[0]);
    if (hold) close(go_pipe[1]);
    return;
  }
  st->pid = pid, st->status_r = status_pipe[0];
  if (hold) st->go_w = go_pipe[1];
  else await_exec(st, 0);
}

static void remember(pid_t pid, long id, int stage, int report_fd) {
  if (child_count == child_cap) {
    child_cap = child_cap ? child_cap * 2 : 64;
    children = realloc(children, child_cap * sizeof *children);
    if (!children) die("memory");
  }
  children[child_count++] = (struct child){pid, id, stage, report_fd};
}

static struct server *find_server(long key, pid_t pid) {
  for (size_t i = 0; i < server_count; i++)
    if (key ? servers[i].key == key : servers[i].pid == pid) return &servers[i];
  return NULL;
}

/* A server that failed us is not asked again; it exits when it sees its socket closed. */
static void drop_server(struct server *z) {
  close(z->sock);
  *z = servers[--server_count];
}

/*
 * Sends stage s to its server ('v'); its pid, or 0 when the server cannot take it (the stage then starts
 * the usual way, which reports why if it cannot run at all).
 */
static pid_t start_served(struct stage *s, char **env) {
  struct server *z = find_server(s->key, 0);
  if (!z) return 0;
  int fds[SERVED_FDS] = {-1, -1, -1, s->report_w}, opened[3] = {-1, -1, -1};
  pid_t pid = 0;
  char *payload = NULL;
  /* Opens onto fds 0-2 are made here, as the helper's parent would (in our mount namespace). */
  for (int o = 0; o < s->open_count; o++) {
    int t = s->opens[o].target;
    if (t == 3) goto done;
    if (t > 3) continue;
    close_fd(&opened[t]);
    if ((opened[t] = open(s->opens[o].path, s->opens[o].flags | O_CLOEXEC | O_NOCTTY)) < 0) goto done;
  }
  for (int k = 0; k < 3; k++) {
    char m = s->mode[k];
    fds[k] = m == 'o' ? opened[k] : m == 'd' ? fds[1] : s->fd[k];
    if (fds[k] < 0) goto done;
  }
  size_t argc = 0, envc = 0, len = 32;
  while (s->argv[argc]) len += strlen(s->argv[argc++]) + 1;
  while (env[envc]) len += strlen(env[envc++]) + 1;
  if (argc < 1 || argc + envc > SERVE_MAX_FIELDS || len > SERVE_MAX_BYTES || !(payload = malloc(len))) goto done;
  size_t used = (size_t)snprintf(payload, len, "%zu%c%zu%c", argc, 0, envc, 0);
  for (size_t i = 0; i < argc; i++) used = (size_t)(stpcpy(payload + used, s->argv[i]) - payload) + 1;
  for (size_t i = 0; i < envc; i++) used = (size_t)(stpcpy(payload + used, env[i]) - payload) + 1;

  struct iovec iov = {payload, used};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof fds)];
  } control;
  struct msghdr msg = {0};
  msg.msg_iov = &iov, msg.msg_iovlen = 1;
  msg.msg_control = control.buf, msg.msg_controllen = sizeof control.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t n;
  while ((n = sendmsg(z->sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) continue;
  int answer = 0;
  struct pollfd p = {z->sock, POLLIN, 0};
  int ready = 0;
  if (n == (ssize_t)used)
    while ((ready = poll(&p, 1, SERVE_TIMEOUT_MS)) < 0 && errno == EINTR) continue;
  if (ready == 1) {
    while ((n = recv(z->sock, &answer, sizeof answer, 0)) < 0 && errno == EINTR) continue;
    if (n == sizeof answer) {
      if (answer > 0) pid = answer;
      goto done; /* a refusal (-errno): the usual way says why */
    }
  }
  drop_server(z);
done:
  for (int k = 0; k < 3; k++) close_fd(&opened[k]);
  free(payload);
  return pid;
}

/* Reports a pipeline's stages to Node: each started one's caller pipes, then its pids and errors. */
static void report_started(long id, long n, struct started *st) {
  char line[512];
  for (long i = 0; i < n; i++) {
    if (st[i].pid == 0) {
      for (int k = 0; k < 3; k++) close_fd(&st[i].caller[k]);
      close_fd(&st[i].report_r);
      continue;
    }
    remember(st[i].pid, id, (int)i, st[i].report_r);
    for (int k = 0; k < 3; k++) {
      if (st[i].caller[k] < 0) continue;
      int len = snprintf(line, sizeof line,
                         "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":{\"spawner\":\"fd\",\"id\":%ld,\"stage\":%ld,\"fd\":%d}}\n", id, i, k);
      send_line(line, (size_t)len, st[i].caller[k]);
      close_fd(&st[i].caller[k]);
    }
  }
  size_t cap = 128 + (size_t)n * 32, used; /* ids and pids are ints, errnos short */
  char *started = malloc(cap);
  if (!started) die("memory");
  used = (size_t)snprintf(started, cap, "{\"spawner\":\"started\",\"id\":%ld,\"pids\":[", id);
  for (long i = 0; i < n; i++) used += (size_t)snprintf(started + used, cap - used, "%s%d", i ? "," : "", st[i].pid);
  used += (size_t)snprintf(started + used, cap - used, "],\"errors\":[");
  for (long i = 0; i < n; i++) used += (size_t)snprintf(started + used, cap - used, "%s%d", i ? "," : "", st[i].err);
  used += (size_t)snprintf(started + used, cap - used, "]}\n");
  send_line(started, used, -1);
  free(started);
}

/* The held pipeline `id`, taken off the list; NULL when there is none (dropped already). */
static struct held *take_held(long id) {
  for (struct held **h = &held_list; *h; h = &(*h)->next) {
    if ((*h)->id != id) continue;
    struct held *found = *h;
    *h = found->next;
    return found;
  }
  return NULL;
}

/* go: every stage may execute now; each is reported once it has (or failed to). */
static void release_held(long id) {
  struct held *h = take_held(id);
  if (!h) return;
  for (long i = 0; i < h->n; i++) {
    if (h->stages[i].go_w < 0) continue;
    (void)!write(h->stages[i].go_w, "g", 1); /* a stage gone already is found by await_exec */
    close_fd(&h->stages[i].go_w);
  }
  for (long i = 0; i < h->n; i++)
    if (h->stages[i].pid != 0) await_exec(&h->stages[i], h->stages[i].ended);
  report_started(h->id, h->n, h->stages);
  free(h->stages), free(h);
}

/* drop: the held stages are killed before their exec, and reported as not started. */
static void drop_held(long id) {
  struct held *h = take_held(id);
  if (!h) return;
  for (long i = 0; i < h->n; i++) {
    struct started *st = &h->stages[i];
    if (st->pid == 0) continue;
    if (!st->ended) kill(st->pid, SIGKILL); /* reaped by reap(), which no longer knows it */
    close_fd(&st->go_w), close_fd(&st->status_r);
    st->pid = 0, st->err = ECANCELED;
  }
  report_started(h->id, h->n, h->stages);
  free(h->stages), free(h);
}

/* grab: copies of process pid's fds 0 and 1, sent to Node; or why not. */
static void grab_stdio(long id, long pid) {
  int fds[2] = {-1, -1}, err = 0;
  int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (pidfd < 0) err = errno;
  for (int k = 0; k < 2 && !err; k++)
    if ((fds[k] = (int)syscall(SYS_pidfd_getfd, pidfd, k, 0)) < 0) err = errno;
  if (pidfd >= 0) close(pidfd);
  char line[256];
  for (int k = 0; k < 2 && !err; k++) {
    int len = snprintf(line, sizeof line, "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Native\",\"msg\":{\"spawner\":\"fd\",\"id\":%ld,\"stage\":0,\"fd\":%d}}\n", id, k);
    send_line(line, (size_t)len, fds[k]);
  }
  for (int k = 0; k < 2; k++) close_fd(&fds[k]);
  int len = snprintf(line, sizeof line, "{\"spawner\":\"grabbed\",\"id\":%ld,\"error\":%d}\n", id, err);
  send_line(line, (size_t)len, -1);
}

/* Serves a request (see the header); one that cannot be read ends the spawner (remux wrote it, so it is a bug). */
static void serve(char *payload, size_t len) {
  struct fields f = {payload, payload + len, 0};
  const char *verb = next_field(&f);
  long id = next_number(&f, LONG_MAX);
  int hold = strcmp(verb, "hold") == 0;
  if (!f.bad && strcmp(verb, "go") == 0) return release_held(id);
  if (!f.bad && strcmp(verb, "drop") == 0) return drop_held(id);
  if (strcmp(verb, "grab") == 0) {
    long pid = next_number(&f, INT_MAX);
    if (!f.bad && pid > 0) return grab_stdio(id, pid);
  }
  if (!hold && strcmp(verb, "run") != 0) f.bad = 1;
  const char *cwd = next_field(&f);
  char **env = next_list(&f);
  long n = next_count(&f);
  struct stage *stages = calloc((size_t)n + 1, sizeof *stages);
  if (!stages) die("memory");
  for (long i = 0; i < n && !f.bad; i++) {
    struct stage *s = &stages[i];
    const char *mode = next_field(&f);
    snprintf(s->mode, sizeof s->mode, "%s", mode);
    if (strcmp(mode, "-") == 0) continue;
    if (strlen(mode) != 4) f.bad = 1;
    if (s->mode[3] == 'v' || s->mode[3] == 'z') {
      s->key = next_number(&f, LONG_MAX);
      if (hold) f.bad = 1;
    }
    s->program = next_field(&f);
    s->argv = next_list(&f);
    s->open_count = (int)next_number(&f, MAX_OPENS);
    for (int o = 0; o < s->open_count; o++) {
      s->opens[o].target = (int)next_number(&f, MAX_TARGET);
      s->opens[o].flags = (int)next_number(&f, 0x7fffffff);
      s->opens[o].path = next_field(&f);
    }
  }
  if (f.bad) {
    fprintf(stderr, "remux-spawner: malformed request %ld\n", id);
    exit(65);
  }

  /* Pipes between neighbours: link[i] connects stage i to stage i + 1. */
  int(*link)[2] = calloc((size_t)n + 1, sizeof *link);
  if (!link) die("memory");
  int failed_pipe = 0;
  for (long i = 0; i + 1 < n; i++)
    if (new_pipe(link[i]) < 0) failed_pipe = errno, link[i][0] = link[i][1] = -1;

  struct started *st = calloc((size_t)n + 1, sizeof *st);
  if (!st) die("memory");
  for (long i = 0; i < n; i++) {
    struct stage *s = &stages[i];
    s->report_w = s->report_r = s->server = -1;
    for (int k = 0; k < 3; k++) s->fd[k] = s->caller[k] = -1;
    st[i] = (struct started){0, 0, {-1, -1, -1}, -1, -1, -1, 0};
    if (strcmp(s->mode, "-") == 0) continue;
    int err = failed_pipe;
    for (int k = 0; k < 3 && !err; k++) {
      int p[2];
      switch (s->mode[k]) {
        case 'c':
          if (new_pipe(p) < 0) {
            err = errno;
            break;
          }
          s->fd[k] = k == 0 ? p[0] : p[1];
          s->caller[k] = k == 0 ? p[1] : p[0];
          /* Node's end is driven by its event loop. */
          fcntl(s->caller[k], F_SETFL, O_NONBLOCK);
          break;
        case 'p': s->fd[k] = i > 0 ? link[i - 1][0] : devnull; break;
        case 'x': s->fd[k] = i + 1 < n ? link[i][1] : devnull; break;
        case 'n': s->fd[k] = devnull; break;
        default: break; /* 'd', 'o': done in the child */
      }
    }
    if (!err && (s->mode[3] == 'r' || s->mode[3] == 'v')) {
      int p[2];
      if (new_pipe(p) < 0) err = errno;
      else s->report_r = p[0], s->report_w = p[1], fcntl(p[0], F_SETFL, O_NONBLOCK);
    }
    if (!err && s->mode[3] == 'z') {
      int p[2];
      if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0) err = errno;
      else s->server = p[0], s->report_w = p[1];
    }
    st[i].err = err;
    if (!err && s->mode[3] == 'v') st[i].pid = start_served(s, env);
    if (!err && st[i].pid == 0) start_stage(cwd, s, env, &st[i], hold);
    if (st[i].pid != 0 && s->server >= 0) {
      if (server_count == server_cap) {
        server_cap = server_cap ? server_cap * 2 : 8;
        if (!(servers = realloc(servers, server_cap * sizeof *servers))) die("memory");
      }
      servers[server_count++] = (struct server){s->key, st[i].pid, s->server};
      s->server = -1;
    }
    close_fd(&s->server);
    for (int k = 0; k < 3; k++)
      if (s->mode[k] == 'c') close_fd(&s->fd[k]);
    close_fd(&s->report_w);
    for (int k = 0; k < 3; k++) st[i].caller[k] = s->caller[k];
    st[i].report_r = s->report_r;
  }
  /* Only the children hold pipe ends now: a reader's exit must SIGPIPE its writer, a writer's exit give EOF. */
  for (long i = 0; i + 1 < n; i++) close_fd(&link[i][0]), close_fd(&link[i][1]);
  for (long i = 0; i < n; i++) free(stages[i].argv);
  free(link), free(stages), free(env);
  if (!hold) {
    report_started(id, n, st);
    return free(st);
  }
  struct held *h = malloc(sizeof *h);
  if (!h) die("memory");
  *h = (struct held){id, n, st, held_list};
  held_list = h;
}

/* Whether `pid` is a stage of a held pipeline (it ended before its go: release_held reports it). */
static int held_ended(pid_t pid) {
  for (struct held *h = held_list; h; h = h->next)
    for (long i = 0; i < h->n; i++)
      if (h->stages[i].pid == pid) {
        h->stages[i].ended = 1;
        return 1;
      }
  return 0;
}

/* Reports every stage that ended. */
static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (held_ended(pid)) continue;
    size_t i = 0;
    while (i < child_count && children[i].pid != pid) i++;
    if (i == child_count) continue;
    struct child c = children[i];
    children[i] = children[--child_count];
    struct server *z = find_server(0, pid);
    if (z) drop_server(z);
    /* The helper wrote its report (if any) before it exited: it is all in the pipe now. */
    /* Each byte of the report takes 6 at most in JSON ("\u00XX"). */
    char report[256] = "", line[128 + 6 * sizeof report];
    if (c.report_fd >= 0) {
      ssize_t got = read(c.report_fd, report, sizeof report - 1);
      report[got > 0 ? got : 0] = 0;
      close(c.report_fd);
    }
    int len = snprintf(line, sizeof line, "{\"spawner\":\"exit\",\"id\":%ld,\"stage\":%d,\"status\":%d,\"report\":\"", c.id, c.stage, status);
    for (const unsigned char *r = (const unsigned char *)report; *r; r++) {
      if (*r == '"' || *r == '\\') len += snprintf(line + len, sizeof line - (size_t)len, "\\%c", *r);
      else if (*r < 0x20 || *r >= 0x7f) len += snprintf(line + len, sizeof line - (size_t)len, "\\u%04x", *r);
      else line[len++] = (char)*r;
    }
    len += snprintf(line + len, sizeof line - (size_t)len, "\"}\n");
    send_line(line, (size_t)len, -1);
  }
}

/*
 * remux went away (its ends of our stdin and channel closed, however it ended, kill -9 included): what it
 * started must not outlive it. Each stage leads its own process group (setsid), so the group goes with it.
 */
static void orphaned(void) {
  for (size_t i = 0; i < child_count; i++) kill(-children[i].pid, SIGKILL);
  for (struct held *h = held_list; h; h = h->next)
    for (long i = 0; i < h->n; i++)
      if (h->stages[i].pid != 0 && !h->stages[i].ended) kill(h->stages[i].pid, SIGKILL);
  exit(0);
}

/* Closes every fd but the channels and keep_a/keep_b: whatever remux inherited without close-on-exec. */
static void close_others(int keep_a, int keep_b) {
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) die("/proc/self/fd");
  int own = dirfd(dir);
  for (struct dirent *e; (e = readdir(dir));) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] != '.' && fd > NODE_FD && fd != own && fd != keep_a && fd != keep_b) close(fd);
  }
  closedir(dir);
}

int main(void) {
  if (getppid() == 1) return 0; /* remux is gone already */
  spawner_pid = getpid();
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) die("signalfd");
  devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) die("/dev/null");
  /* The stages get none of the spawner's own fds, nor any remux did not mean to pass on. */
  for (int fd = 0; fd <= NODE_FD; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  close_others(devnull, sigfd);

  size_t cap = 1 << 16, have = 0;
  char *buf = malloc(cap);
  if (!buf) die("memory");
  struct pollfd fds[3] = {{IN_FD, POLLIN, 0}, {NODE_FD, POLLIN, 0}, {sigfd, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (fds[2].revents) {
      struct signalfd_siginfo info;
      while (read(sigfd, &info, sizeof info) > 0) continue;
      reap();
    }
    if (fds[1].revents) {
      char drop[4096];
      ssize_t n = read(NODE_FD, drop, sizeof drop);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) orphaned();
    }
    if (fds[0].revents) {
      if (have == cap && !(buf = realloc(buf, cap *= 2))) die("memory");
      ssize_t n = read(IN_FD, buf + have, cap - have);
      if (n == 0) orphaned();
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        die("reading requests");
      }
      have += (size_t)n;
      for (;;) {
        if (have < 4) break;
        uint32_t len;
        memcpy(&len, buf, 4);
        if (have < 4 + (size_t)len) {
          while (cap < 4 + (size_t)len)
            if (!(buf = realloc(buf, cap *= 2))) die("memory");
          break;
        }
        serve(buf + 4, len);
        memmove(buf, buf + 4 + len, have - 4 - len);
        have -= 4 + len;
      }
    }
  }
}
