/* The container's log in Docker's json-file format: one {"log","stream","time"} object a line, lines longer
 * than 16 KiB split, rotation by size (max-size, max-file), strings escaped exactly as Docker escapes them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"
#include "util.h"

int buf_append(buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) return -1;
    b->data = d;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void buf_consume(buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    /* give a large buffer back once it is empty: an idle shim stays small */
    if (b->cap > 64 * 1024) {
      free(b->data);
      b->data = NULL;
      b->cap = 0;
    }
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void buf_free(buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void format_time(const struct timespec *ts, bool trim, char out[40]) {
  struct tm tm;
  gmtime_r(&ts->tv_sec, &tm);
  int n = snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec);
  char frac[16];
  snprintf(frac, sizeof frac, ".%09ld", ts->tv_nsec);
  if (trim) { /* Go's RFC3339Nano: trailing zeros dropped, and the dot with them */
    size_t l = strlen(frac);
    while (l > 1 && frac[l - 1] == '0') frac[--l] = '\0';
    if (l == 1) frac[0] = '\0';
  }
  snprintf(out + n, (size_t)(40 - n), "%sZ", frac);
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates, at most U+10FFFF), or 0. Sets
 * *cp to the code point. */
static size_t utf8_seq(const unsigned char *p, size_t n, unsigned *cp) {
  unsigned c = p[0];
  size_t len;
  unsigned min;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, min = 0x80, c &= 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, min = 0x800, c &= 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, min = 0x10000, c &= 0x07;
  else
    return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  *cp = c;
  return len;
}

void json_escape_docker(buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  size_t start = 0, i = 0;
  buf_append(b, "\"", 1);
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      if (c >= 0x20 && c != '\\' && c != '"' && c != '<' && c != '>' && c != '&') {
        i++;
        continue;
      }
      buf_append(b, s + start, i - start);
      char esc[6];
      size_t el = 2;
      esc[0] = '\\';
      if (c == '\\' || c == '"')
        esc[1] = (char)c;
      else if (c == '\n')
        esc[1] = 'n';
      else if (c == '\r')
        esc[1] = 'r';
      else
        memcpy(esc, (char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]}, el = 6);
      buf_append(b, esc, el);
      start = ++i;
      continue;
    }
    unsigned cp;
    size_t len = utf8_seq(p + i, n - i, &cp);
    if (len == 0 || cp == 0x2028 || cp == 0x2029) {
      buf_append(b, s + start, i - start);
      buf_append(b, len == 0 ? "\\ufffd" : cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
      i += len ? len : 1;
      start = i;
      continue;
    }
    i += len;
  }
  buf_append(b, s + start, n - start);
  buf_append(b, "\"", 1);
}

int log_open_file(logfile *lf, sk_error *err) {
  lf->fd = open(lf->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (lf->fd < 0) return sk_fail(err, errno, "opening the log %s", lf->path);
  struct stat st;
  lf->size = fstat(lf->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  return 0;
}

static void log_write_out(logfile *lf, size_t n) {
  if (n == 0) return;
  if (lf->fd >= 0 && write_all(lf->fd, lf->out.data, n) == 0) lf->size += n;
  buf_consume(&lf->out, n);
}

/* log → log.1 → … → log.(max_file-1); with max_file ≤ 1 the file is truncated in place. */
static void log_rotate(logfile *lf) {
  if (lf->max_file <= 1) {
    if (lf->fd >= 0 && ftruncate(lf->fd, 0) == 0) lf->size = 0;
    return;
  }
  char from[PATH_MAX], to[PATH_MAX];
  for (int i = lf->max_file - 1; i >= 1; i--) {
    if (i == 1)
      snprintf(from, sizeof from, "%s", lf->path);
    else
      snprintf(from, sizeof from, "%s.%d", lf->path, i - 1);
    snprintf(to, sizeof to, "%s.%d", lf->path, i);
    rename(from, to); /* a missing file is fine */
  }
  if (lf->fd >= 0) close(lf->fd);
  lf->fd = open(lf->path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  lf->size = 0;
}

static void log_entry(logfile *lf, int stream, const char *p, size_t n, const char *when) {
  size_t before = lf->out.len;
  buf_append(&lf->out, "{\"log\":", 7);
  json_escape_docker(&lf->out, p, n);
  buf_append(&lf->out, stream ? ",\"stream\":\"stderr\",\"time\":\"" : ",\"stream\":\"stdout\",\"time\":\"", 27);
  buf_append(&lf->out, when, strlen(when));
  buf_append(&lf->out, "\"}\n", 3);
  /* rotate before an entry that would take the file past max-size (an entry alone may be larger) */
  if (lf->max_size && lf->size + lf->out.len > lf->max_size && lf->size + before > 0) {
    log_write_out(lf, before);
    log_rotate(lf);
  }
  if (lf->out.len >= 64 * 1024) log_write_out(lf, lf->out.len);
}

void log_feed(logfile *lf, int stream, const char *p, size_t n) {
  struct timespec ts;
  char when[40];
  clock_gettime(CLOCK_REALTIME, &ts);
  format_time(&ts, true, when);
  char *part = lf->part[stream];
  size_t *plen = &lf->part_len[stream];
  while (n > 0) {
    size_t take = n < LOG_LINE_MAX - *plen ? n : LOG_LINE_MAX - *plen;
    const char *nl = memchr(p, '\n', take);
    if (nl) take = (size_t)(nl - p) + 1;
    bool complete = nl != NULL || *plen + take == LOG_LINE_MAX;
    if (*plen == 0 && complete) {
      log_entry(lf, stream, p, take, when);
    } else {
      memcpy(part + *plen, p, take);
      *plen += take;
      if (complete) {
        log_entry(lf, stream, part, *plen, when);
        *plen = 0;
      }
    }
    p += take;
    n -= take;
  }
  log_write_out(lf, lf->out.len);
}

void log_flush_partial(logfile *lf) {
  struct timespec ts;
  char when[40];
  clock_gettime(CLOCK_REALTIME, &ts);
  format_time(&ts, true, when);
  for (int s = 0; s < 2; s++)
    if (lf->part_len[s]) {
      log_entry(lf, s, lf->part[s], lf->part_len[s], when);
      lf->part_len[s] = 0;
    }
  log_write_out(lf, lf->out.len);
}
