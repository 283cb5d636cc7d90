#include "jsonutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

json_object *j_get(json_object *obj, const char *key) {
  json_object *v = NULL;
  if (obj == NULL || !json_object_is_type(obj, json_type_object)) return NULL;
  if (!json_object_object_get_ex(obj, key, &v)) return NULL;
  return v; /* NULL for JSON null */
}

static int type_error(sk_error *err, const char *where, const char *key, const char *want) {
  return sk_fail(err, 0, "%s%s%s must be %s", where, *where ? "." : "", key, want);
}

static int missing(sk_error *err, const char *where, const char *key) {
  return sk_fail(err, 0, "%s%s%s is required", where, *where ? "." : "", key);
}

int j_string(json_object *obj, const char *key, const char *where, bool required, const char **out, sk_error *err) {
  json_object *v = j_get(obj, key);
  if (v == NULL) return required ? missing(err, where, key) : 0;
  if (!json_object_is_type(v, json_type_string)) return type_error(err, where, key, "a string");
  *out = json_object_get_string(v);
  return 0;
}

int j_bool(json_object *obj, const char *key, const char *where, bool *out, sk_error *err) {
  json_object *v = j_get(obj, key);
  if (v == NULL) return 0;
  if (!json_object_is_type(v, json_type_boolean)) return type_error(err, where, key, "a boolean");
  *out = json_object_get_boolean(v);
  return 0;
}

int j_int64(json_object *obj, const char *key, const char *where, bool required, int64_t *out, sk_error *err) {
  json_object *v = j_get(obj, key);
  if (v == NULL) return required ? missing(err, where, key) : 0;
  if (!json_object_is_type(v, json_type_int)) return type_error(err, where, key, "an integer");
  errno = 0;
  int64_t n = json_object_get_int64(v);
  if (errno == EINVAL || (n == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX))
    return type_error(err, where, key, "an integer in the signed 64-bit range");
  *out = n;
  return 0;
}

int j_uint64(json_object *obj, const char *key, const char *where, bool required, uint64_t *out, sk_error *err) {
  json_object *v = j_get(obj, key);
  if (v == NULL) return required ? missing(err, where, key) : 0;
  if (!json_object_is_type(v, json_type_int)) return type_error(err, where, key, "an integer");
  if (json_object_get_int64(v) < 0) return type_error(err, where, key, "a non-negative integer");
  *out = json_object_get_uint64(v);
  return 0;
}

int j_object(json_object *obj, const char *key, const char *where, bool required, json_object **out, sk_error *err) {
  json_object *v = j_get(obj, key);
  *out = NULL;
  if (v == NULL) return required ? missing(err, where, key) : 0;
  if (!json_object_is_type(v, json_type_object)) return type_error(err, where, key, "an object");
  *out = v;
  return 0;
}

int j_array(json_object *obj, const char *key, const char *where, bool required, json_object **out, sk_error *err) {
  json_object *v = j_get(obj, key);
  *out = NULL;
  if (v == NULL) return required ? missing(err, where, key) : 0;
  if (!json_object_is_type(v, json_type_array)) return type_error(err, where, key, "an array");
  *out = v;
  return 0;
}

int j_strv(json_object *obj, const char *key, const char *where, bool required, const char ***out, sk_error *err) {
  json_object *arr;
  if (j_array(obj, key, where, required, &arr, err) < 0) return -1;
  if (arr == NULL) return 0;
  size_t n = json_object_array_length(arr);
  const char **v = calloc(n + 1, sizeof *v);
  if (v == NULL) return sk_fail(err, errno, "allocating %s.%s", where, key);
  for (size_t i = 0; i < n; i++) {
    json_object *s = json_object_array_get_idx(arr, i);
    if (s == NULL || !json_object_is_type(s, json_type_string)) {
      free(v);
      return type_error(err, where, key, "an array of strings");
    }
    v[i] = json_object_get_string(s);
  }
  *out = v;
  return 0;
}

json_object *j_parse_string(const char *text, size_t len, const char *what, sk_error *err) {
  json_tokener *tok = json_tokener_new();
  if (tok == NULL) {
    sk_fail(err, ENOMEM, "parsing %s", what);
    return NULL;
  }
  json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
  enum json_tokener_error jerr = json_tokener_get_error(tok);
  if (obj == NULL || jerr != json_tokener_success) {
    if (jerr == json_tokener_continue)
      sk_fail(err, 0, "%s is not valid JSON: unexpected end of input", what);
    else
      sk_fail(err, 0, "%s is not valid JSON: %s at offset %zu", what, json_tokener_error_desc(jerr),
              json_tokener_get_parse_end(tok));
    json_object_put(obj);
    obj = NULL;
  } else if (json_tokener_get_parse_end(tok) < len) {
    /* trailing garbage other than whitespace */
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
      if (!strchr(" \t\r\n", text[i])) {
        sk_fail(err, 0, "%s is not valid JSON: trailing data at offset %zu", what, i);
        json_object_put(obj);
        obj = NULL;
        break;
      }
  }
  json_tokener_free(tok);
  return obj;
}

json_object *j_parse_file(const char *path, sk_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    sk_fail(err, errno, "opening %s", path);
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    sk_fail(err, errno, "stat %s", path);
    close(fd);
    return NULL;
  }
  size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (buf == NULL) {
      sk_fail(err, ENOMEM, "reading %s", path);
      close(fd);
      return NULL;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      sk_fail(err, errno, "reading %s", path);
      free(buf);
      close(fd);
      return NULL;
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len == cap) buf = realloc(buf, cap *= 2);
  }
  close(fd);
  json_object *obj = j_parse_string(buf, len, path, err);
  free(buf);
  return obj;
}
