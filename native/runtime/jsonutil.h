/* Typed access to config JSON (json-c) with errors that name the field: "linux.resources.memory.limit
 * must be an integer". `where` is the dotted path of obj, used in messages. A missing optional key leaves
 * *out untouched and returns 0. */
#ifndef SKIFF_JSONUTIL_H
#define SKIFF_JSONUTIL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* The member `key` of obj if present and not null, else NULL. */
json_object *j_get(json_object *obj, const char *key);
int j_string(json_object *obj, const char *key, const char *where, bool required, const char **out, sk_error *err);
int j_bool(json_object *obj, const char *key, const char *where, bool *out, sk_error *err);
int j_int64(json_object *obj, const char *key, const char *where, bool required, int64_t *out, sk_error *err);
int j_uint64(json_object *obj, const char *key, const char *where, bool required, uint64_t *out, sk_error *err);
/* Objects and arrays: *out = NULL when absent and not required. */
int j_object(json_object *obj, const char *key, const char *where, bool required, json_object **out, sk_error *err);
int j_array(json_object *obj, const char *key, const char *where, bool required, json_object **out, sk_error *err);
/* A NULL-terminated array of the strings in array `key` (malloc'd; the strings belong to obj). */
int j_strv(json_object *obj, const char *key, const char *where, bool required, const char ***out, sk_error *err);

/* Parse a file or a string into JSON, with the parser's own message on failure. */
json_object *j_parse_file(const char *path, sk_error *err);
json_object *j_parse_string(const char *text, size_t len, const char *what, sk_error *err);

#endif
