/*
 * remux launcher: the `remux` command on the PATH.
 *
 * `remux client …`, `remux session …` and `remux rpc …` are forwarded as typed to a running daemon over its Unix socket,
 * and the daemon runs it with the CLI's own code against its warm connections (src/gateway/cli-session.ts):
 * this process only copies output frames to stdout/stderr, passes Ctrl-C, answers questions and sends
 * its stdin as the daemon asks for it. That spares a warm fan-out the ~40 ms of starting Node. Everything else — other commands, no daemon, a
 * daemon that declines (another version, --no-daemon), anything unusual in locating the socket —
 * runs the Node CLI (dist/src/cli/launch.cjs, as bin/remux.js does) with the same arguments. So does a
 * daemon moved away from the socket named now (config.yaml or REMUX_SOCKET changed while it ran): none
 * answers there, and the Node CLI finds it through its record (src/gateway/daemon-record.ts). The frame
 * format is described in src/gateway/protocol.ts.
 *
 * `remux mcp --stdio [--principal NAME]` goes the same way (src/gateway/mcp/stdio.ts): the daemon takes
 * the session, and where its stdin and stdout are pipes or sockets, takes them over too (this process
 * lets the daemon's spawner copy them, PR_SET_PTRACER, and only waits to hear how the session ended), so
 * the AI client's messages reach the daemon with no process between; elsewhere this process copies them
 * between stdio and the socket. Either way, an AI client's MCP server costs a few hundred KiB of memory
 * and no Node start-up. Anything else the daemon answers (declined, refused) runs the Node CLI, which
 * says why.
 *
 * REMUX_LAUNCHER_DEBUG=1 says on stderr which way a command went.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef REMUX_VERSION
#error "build with -DREMUX_VERSION=\"x.y.z\" (scripts/build-native.sh)"
#endif

#define MAX_FRAME_BYTES (64u << 20)

extern char **environ;

static int debug;
static volatile sig_atomic_t interrupts;

static void say(const char *fmt, ...) {
  if (!debug) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("remux launcher: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ---- growable byte buffer ---- */

struct buf {
  char *data;
  size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) {
      fputs("remux: out of memory\n", stderr);
      exit(1);
    }
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* A JSON string: quotes, backslashes and control characters escaped; other bytes as they are. */
static void buf_json(struct buf *b, const char *s) {
  buf_str(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char esc[2] = {'\\', (char)*p};
      buf_add(b, esc, 2);
    } else if (*p < 0x20) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      buf_str(b, esc);
    } else {
      buf_add(b, p, 1);
    }
  }
  buf_str(b, "\"");
}

/* ---- the Node CLI ---- */

static char **saved_argv;

static void run_node(const char *why) {
  say("running the Node CLI (%s)", why);
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    if (!realpath(saved_argv[0], self)) {
      fprintf(stderr, "remux: cannot locate this program (%s); run `node <remux>/bin/remux.js` instead\n", strerror(errno));
      exit(1);
    }
  } else {
    self[n] = '\0';
  }
  char *slash = strrchr(self, '/');
  if (slash) *slash = '\0';
  char script[PATH_MAX + 32];
  snprintf(script, sizeof script, "%s/../dist/src/cli/launch.cjs", self);

  int argc = 0;
  while (saved_argv[argc]) argc++;
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (!args) exit(1);
  args[0] = "node";
  args[1] = script;
  for (int i = 1; i < argc; i++) args[i + 1] = saved_argv[i];
  signal(SIGPIPE, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  execvp("node", args);
  fprintf(stderr, "remux: cannot run node (%s): remux needs Node.js 20 or later on the PATH\n", strerror(errno));
  exit(127);
}

/* ---- where the daemon's socket is (the same answer as socketFile() in src/config/paths.ts) ---- */

/* Lexically normalised absolute path of `p` against `cwd`, like Node's path.resolve. */
static int absolute(const char *cwd, const char *p, char *out, size_t size) {
  char joined[PATH_MAX * 2];
  if (p[0] == '/') snprintf(joined, sizeof joined, "%s", p);
  else snprintf(joined, sizeof joined, "%s/%s", cwd, p);
  size_t len = 0;
  out[0] = '\0';
  for (char *seg = strtok(joined, "/"); seg; seg = strtok(NULL, "/")) {
    if (strcmp(seg, ".") == 0) continue;
    if (strcmp(seg, "..") == 0) {
      char *last = strrchr(out, '/');
      if (last) {
        *last = '\0';
        len = (size_t)(last - out);
      }
      continue;
    }
    size_t n = strlen(seg);
    if (len + 1 + n + 1 > size) return -1;
    out[len++] = '/';
    memcpy(out + len, seg, n + 1);
    len += n;
  }
  if (len == 0) snprintf(out, size, "/");
  return 0;
}

static const char *env_first(const char *a, const char *b) {
  const char *v = getenv(a);
  if (v && *v) return v;
  v = b ? getenv(b) : NULL;
  return v && *v ? v : NULL;
}

static const char *home_dir(void) {
  const char *home = getenv("HOME");
  if (home) return home;
  struct passwd *pw = getpwuid(getuid());
  return pw ? pw->pw_dir : NULL;
}

/* A path as users write it in variables: a leading ~/ is the home directory. */
static int user_path(const char *cwd, const char *value, char *out, size_t size) {
  char expanded[PATH_MAX * 2];
  if (value[0] == '~' && (value[1] == '\0' || value[1] == '/')) {
    const char *home = home_dir();
    if (!home || !*home) return -1;
    snprintf(expanded, sizeof expanded, "%s%s", home, value + 1);
    value = expanded;
  }
  return absolute(cwd, value, out, size);
}

/* True when config.yaml has a line `socket:` (then only the Node CLI, which reads YAML, knows the path). */
static int config_names_socket(const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) return 0;
  char line[4096];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (strncmp(p, "socket", 6) != 0) continue;
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    found = *p == ':';
  }
  fclose(f);
  return found;
}

static int socket_path(const char *cwd, char *out, size_t size, const char **why) {
  const char *explicit = env_first("REMUX_SOCKET", "RPIPE_SOCKET");
  if (explicit) return user_path(cwd, explicit, out, size) == 0 ? 0 : (*why = "cannot expand REMUX_SOCKET", -1);

  char home[PATH_MAX];
  const char *remux_home = env_first("REMUX_HOME", NULL);
  const char *xdg = env_first("XDG_CONFIG_HOME", NULL);
  int ok;
  if (remux_home) {
    ok = user_path(cwd, remux_home, home, sizeof home);
  } else if (xdg) {
    char joined[PATH_MAX + 8];
    snprintf(joined, sizeof joined, "%s/remux", xdg);
    ok = absolute(cwd, joined, home, sizeof home);
  } else {
    const char *h = home_dir();
    if (!h || !*h) return *why = "no home directory", -1;
    char joined[PATH_MAX + 16];
    snprintf(joined, sizeof joined, "%s/.config/remux", h);
    ok = absolute(cwd, joined, home, sizeof home);
  }
  if (ok != 0) return *why = "path too long", -1;

  char config[PATH_MAX + 16];
  snprintf(config, sizeof config, "%s/config.yaml", home);
  if (config_names_socket(config)) return *why = "config.yaml names the socket", -1;
  if ((size_t)snprintf(out, size, "%s/run/remux.sock", home) >= size) return *why = "path too long", -1;
  return 0;
}

/* ---- talking to the daemon ---- */

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static void send_frame(int sock, char type, const void *payload, uint32_t len) {
  unsigned char head[5] = {(unsigned char)type, (unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len};
  /* A daemon that went away shows up as end of stream on the next read. */
  if (write_all(sock, head, 5) == 0 && len > 0) write_all(sock, payload, len);
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void on_sigint(int sig) {
  (void)sig;
  if (++interrupts >= 2) _exit(130);
}

/* Copies one output frame to `fd`; our reader gone (`| head`; ECONNRESET when stdout is a socket) ends quietly, like the Node CLI. */
static void output(int fd, const char *p, size_t n) {
  if (write_all(fd, p, n) == 0) return;
  exit(errno == EPIPE || errno == ECONNRESET ? 0 : 1);
}

/* Our stdin is a command's input (a pipe, file or socket, not a terminal or /dev/null), as in gateway/forward.ts. */
static int stdin_is_input(void) {
  struct stat st;
  return fstat(0, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode));
}

/*
 * With `forward_stdin`, our stdin goes to the daemon in 's' frames, never more than the daemon granted in
 * 'c' frames (it grants as the command reads), then an 'n' frame at its end.
 */
static int run_forwarded(int sock, int forward_stdin) {
  struct buf in = {0}, answer = {0};
  unsigned char question_id[4];
  int asking = 0, stdin_open = 1, exit_code = -1, seen_interrupts = 0, any_frame = 0;
  uint64_t credit = 0;
  for (;;) {
    while (seen_interrupts < interrupts) {
      seen_interrupts++;
      send_frame(sock, 'i', NULL, 0);
    }
    struct pollfd fds[2] = {{.fd = sock, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    int feeding = forward_stdin && stdin_open && credit > 0;
    int nfds = (asking && stdin_open) || feeding ? 2 : 1;
    if (poll(fds, (nfds_t)nfds, -1) < 0) {
      if (errno == EINTR) continue;
      perror("remux: poll");
      return 1;
    }
    if (feeding && fds[1].revents) {
      char chunk[65536];
      ssize_t n = read(0, chunk, credit < sizeof chunk ? (size_t)credit : sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        send_frame(sock, 's', chunk, (uint32_t)n);
        credit -= (uint64_t)n;
      } else {
        /* The end of our stdin (or an error reading it): the command sees its end. */
        stdin_open = 0;
        send_frame(sock, 'n', NULL, 0);
      }
    } else if (nfds == 2 && fds[1].revents) {
      char chunk[4096];
      ssize_t n = read(0, chunk, sizeof chunk);
      if (n <= 0 && !(n < 0 && errno == EINTR)) stdin_open = 0;
      if (n > 0) buf_add(&answer, chunk, (size_t)n);
      char *nl = answer.len ? memchr(answer.data, '\n', answer.len) : NULL;
      if (nl || !stdin_open) {
        size_t line = nl ? (size_t)(nl - answer.data) : answer.len;
        if (line > 0 && answer.data[line - 1] == '\r') line--;
        struct buf reply = {0};
        buf_add(&reply, question_id, 4);
        if (line > 0) buf_add(&reply, answer.data, line);
        send_frame(sock, 'a', reply.data, (uint32_t)reply.len);
        free(reply.data);
        answer.len = 0;
        asking = 0;
      }
    }
    if (!fds[0].revents) continue;
    char chunk[65536];
    ssize_t n = read(sock, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf_add(&in, chunk, (size_t)n);
    size_t at = 0;
    while (in.len - at >= 5) {
      const unsigned char *head = (const unsigned char *)in.data + at;
      uint32_t len = be32(head + 1);
      if (len > MAX_FRAME_BYTES) {
        fputs("remux: the daemon sent an oversized frame\n", stderr);
        return 255;
      }
      if (in.len - at < 5 + (size_t)len) break;
      const char *payload = in.data + at + 5;
      switch (head[0]) {
      case 'o': output(1, payload, len); break;
      case 'e': output(2, payload, len); break;
      case 'q':
        if (len >= 4) {
          memcpy(question_id, payload, 4);
          output(2, payload + 4, len - 4);
          asking = 1;
        }
        break;
      case 'x':
        if (len >= 4) exit_code = (int)be32((const unsigned char *)payload);
        break;
      case 'c':
        if (len >= 4) credit += be32((const unsigned char *)payload);
        break;
      case 'd':
        if (!any_frame) {
          close(sock);
          char why[512];
          snprintf(why, sizeof why, "the daemon declined: %.*s", (int)(len < 400 ? len : 400), payload);
          run_node(why);
        }
        break;
      default:
        fprintf(stderr, "remux: unknown frame type %d from the daemon\n", head[0]);
        return 255;
      }
      any_frame = 1;
      at += 5 + (size_t)len;
    }
    memmove(in.data, in.data + at, in.len - at);
    in.len -= at;
  }
  if (exit_code >= 0) return exit_code;
  fputs("remux: the daemon closed the connection before the command finished\n", stderr);
  return 255;
}

/* `mcp --stdio [--principal NAME]` and nothing else; sets *principal (NULL when not given). */
static int is_mcp_stdio(int argc, char **argv, const char **principal) {
  int stdio = 0;
  *principal = NULL;
  if (argc < 2 || strcmp(argv[1], "mcp") != 0) return 0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--stdio") == 0) stdio = 1;
    else if (strcmp(argv[i], "--principal") == 0 && i + 1 < argc && argv[i + 1][0] != '-') *principal = argv[++i];
    else if (strncmp(argv[i], "--principal=", 12) == 0 && argv[i][12]) *principal = argv[i] + 12;
    else return 0;
  }
  return stdio;
}

/* The environment the daemon reads the caller's files from, as src/gateway/forward.ts FORWARDED_ENV. */
static void add_env(struct buf *req) {
  buf_str(req, "{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    size_t name_len = (size_t)(eq - *e);
    int wanted = strncmp(*e, "REMUX_", 6) == 0 || strncmp(*e, "RPIPE_", 6) == 0 || (name_len == 4 && strncmp(*e, "HOME", 4) == 0) ||
                 (name_len == 15 && strncmp(*e, "XDG_CONFIG_HOME", 15) == 0);
    if (!wanted) continue;
    char name[256];
    if (name_len >= sizeof name) continue;
    memcpy(name, *e, name_len);
    name[name_len] = '\0';
    if (!first) buf_str(req, ",");
    first = 0;
    buf_json(req, name);
    buf_str(req, ":");
    buf_json(req, eq + 1);
  }
  buf_str(req, "}");
}

/* Copies stdin to the daemon and the daemon to stdout until the session ends. */
static int relay_mcp(int sock, const char *early, size_t early_len) {
  if (early_len > 0) output(1, early, early_len);
  int stdin_open = 1;
  char chunk[65536];
  for (;;) {
    struct pollfd fds[2] = {{.fd = sock, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    if (poll(fds, stdin_open ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      perror("remux: poll");
      return 1;
    }
    if (stdin_open && fds[1].revents) {
      ssize_t n = read(0, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0 && write_all(sock, chunk, (size_t)n) != 0) n = 0;
      if (n <= 0) {
        /* The client closed our stdin: the session ends once the daemon has answered what it has. */
        stdin_open = 0;
        shutdown(sock, SHUT_WR);
      }
    }
    if (fds[0].revents) {
      ssize_t n = read(sock, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      output(1, chunk, (size_t)n);
    }
  }
  if (!stdin_open) return 0;
  fputs("remux: the daemon ended the MCP session: it stopped or restarted, or the session's token no longer holds (its last answer says so); start the client's session again\n", stderr);
  return 255;
}

/*
 * Whether stdin and stdout are pipes or sockets, two of them: what the daemon can take over (not a
 * terminal, not a file, not one socket both ways, whose read side the daemon's end of the other would shut).
 */
static int takeable_stdio(void) {
  struct stat in, out;
  if (fstat(0, &in) != 0 || fstat(1, &out) != 0) return 0;
  int streams = (S_ISFIFO(in.st_mode) || S_ISSOCK(in.st_mode)) && (S_ISFIFO(out.st_mode) || S_ISSOCK(out.st_mode));
  return streams && !(in.st_dev == out.st_dev && in.st_ino == out.st_ino);
}

/* Reads the next line the daemon sends into *in (the lines before it consumed); NULL at its end. */
static char *next_line(int sock, struct buf *in, size_t *taken) {
  if (*taken > 0) {
    memmove(in->data, in->data + *taken, in->len - *taken);
    in->len -= *taken;
    *taken = 0;
  }
  char *nl;
  char chunk[4096];
  while (!(nl = in->len ? memchr(in->data, '\n', in->len) : NULL)) {
    ssize_t n = read(sock, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || in->len > 65536) return NULL;
    buf_add(in, chunk, (size_t)n);
  }
  *nl = 0;
  *taken = (size_t)(nl + 1 - in->data);
  return in->data;
}

/*
 * The daemon reads and writes our stdin and stdout itself: ours become /dev/null, and we wait for the
 * session's end. `ended` means the client closed its input; the connection closing without it means the
 * daemon ended the session (stopped, restarted, a token no longer valid).
 */
static int await_handoff_end(int sock, struct buf *in, size_t *taken) {
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) dup2(null, 0), dup2(null, 1), close(null);
  char *line;
  int ended = 0;
  while ((line = next_line(sock, in, taken))) ended |= strcmp(line, "{\"type\":\"ended\"}") == 0;
  if (ended) return 0;
  fputs("remux: the daemon ended the MCP session: it stopped or restarted, or the session's token no longer holds (its last answer says so); start the client's session again\n", stderr);
  return 255;
}

/* Hands the MCP session to the daemon on `sock`; runs the Node CLI when the daemon does not take it. */
static int forward_mcp(int sock, const char *cwd, const char *principal) {
  struct buf req = {0};
  buf_str(&req, "{\"type\":\"mcp\",\"version\":\"" REMUX_VERSION "\",\"cwd\":");
  buf_json(&req, cwd);
  buf_str(&req, ",\"env\":");
  add_env(&req);
  const char *token = env_first("REMUX_TOKEN", NULL);
  if (token) {
    buf_str(&req, ",\"token\":");
    buf_json(&req, token);
  }
  if (principal) {
    buf_str(&req, ",\"principal\":");
    buf_json(&req, principal);
  }
  if (takeable_stdio()) {
    char pid[32];
    snprintf(pid, sizeof pid, ",\"pid\":%d", (int)getpid());
    buf_str(&req, pid);
  }
  buf_str(&req, "}\n");
  signal(SIGPIPE, SIG_IGN);
  if (write_all(sock, req.data, req.len) != 0) run_node("the daemon did not take the request");
  free(req.data);

  /* The answer is one JSON line; MCP messages may follow it in the same read. */
  struct buf in = {0};
  size_t taken = 0;
  char *line = next_line(sock, &in, &taken);
  if (!line) run_node("the daemon closed the connection before the MCP session started");
  static const char handoff[] = "{\"type\":\"handoff\",\"ptracer\":";
  if (strncmp(line, handoff, sizeof handoff - 1) == 0) {
    /* Only that process may take our fds, where a ptrace policy (Yama) would otherwise refuse it. */
    long ptracer = strtol(line + sizeof handoff - 1, NULL, 10);
    if (ptracer > 0) prctl(PR_SET_PTRACER, (unsigned long)ptracer, 0, 0, 0);
    static const char ready[] = "{\"type\":\"ready\"}\n";
    if (write_all(sock, ready, sizeof ready - 1) != 0 || !(line = next_line(sock, &in, &taken)))
      run_node("the daemon closed the connection before the MCP session started");
    if (strcmp(line, "{\"type\":\"done\",\"handoff\":true}") == 0) {
      say("the daemon serves the MCP session on our stdin and stdout");
      return await_handoff_end(sock, &in, &taken);
    }
  }
  if (strcmp(line, "{\"type\":\"done\"}") != 0) {
    close(sock);
    run_node("the daemon did not take the MCP session");
  }
  say("the daemon serves the MCP session");
  return relay_mcp(sock, in.data + taken, in.len - taken);
}

int main(int argc, char **argv) {
  saved_argv = argv;
  const char *d = getenv("REMUX_LAUNCHER_DEBUG");
  debug = d && *d && strcmp(d, "0") != 0;

  int first_word = 1;
  while (first_word < argc && argv[first_word][0] == '-') first_word++;
  const char *principal = NULL;
  int mcp = is_mcp_stdio(argc, argv, &principal);
  // The daemon declines what of these it does not serve (session attach needs this terminal): Node runs it then.
  if (!mcp && (first_word >= argc || (strcmp(argv[first_word], "client") != 0 && strcmp(argv[first_word], "session") != 0 && strcmp(argv[first_word], "rpc") != 0))) {
    run_node("not a command the daemon serves");
  }

  char cwd[PATH_MAX], path[PATH_MAX];
  const char *why = NULL;
  if (!getcwd(cwd, sizeof cwd)) run_node("no working directory");
  if (socket_path(cwd, path, sizeof path, &why) != 0) run_node(why);

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) run_node("socket path too long for a direct connection");
  memcpy(addr.sun_path, path, strlen(path) + 1);
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) {
    char reason[PATH_MAX + 64];
    snprintf(reason, sizeof reason, "no daemon on %s: %s", path, strerror(errno));
    run_node(reason);
  }
  say("forwarding to the daemon on %s", path);
  if (mcp) return forward_mcp(sock, cwd, principal);

  struct buf req = {0};
  buf_str(&req, "{\"type\":\"cli\",\"version\":\"" REMUX_VERSION "\",\"args\":[");
  for (int i = 1; i < argc; i++) {
    if (i > 1) buf_str(&req, ",");
    buf_json(&req, argv[i]);
  }
  buf_str(&req, "],\"cwd\":");
  buf_json(&req, cwd);
  buf_str(&req, ",\"env\":");
  add_env(&req);
  buf_str(&req, ",\"stdinIsTTY\":");
  buf_str(&req, isatty(0) ? "true" : "false");
  buf_str(&req, ",\"stderrIsTTY\":");
  buf_str(&req, isatty(2) ? "true" : "false");
  int forward_stdin = stdin_is_input();
  if (forward_stdin) buf_str(&req, ",\"stdin\":true");
  struct winsize ws;
  if (isatty(1) && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    char cols[32];
    snprintf(cols, sizeof cols, ",\"columns\":%u", (unsigned)ws.ws_col);
    buf_str(&req, cols);
  }
  buf_str(&req, "}\n");

  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_sigint};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);

  if (write_all(sock, req.data, req.len) != 0) run_node("the daemon did not take the request");
  free(req.data);
  return run_forwarded(sock, forward_stdin);
}
