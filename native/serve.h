/*
 * The stage server's request limits (remux-sandbox-enter --serve, native/sandbox-enter.c), shared with its
 * asker native/spawner.c; src/runtime/remote/tools/executor.py repeats them for SSH hosts.
 */
#ifndef REMUX_SERVE_H
#define REMUX_SERVE_H

/* Bytes of one request (its fields), and fields (command line + environment) in one. */
#define SERVE_MAX_BYTES (128 * 1024)
#define SERVE_MAX_FIELDS 8192
/* The stage's fds 0-3 (its stdio and report pipe), sent with each request. */
#define SERVED_FDS 4

#endif
