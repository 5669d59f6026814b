/* A Bulkhead task in C as a WebAssembly component (ABI v2): wit-bindgen's C bindings of the
 * `plugin` world in wit/plugin.wit (plugin.h, plugin.c), built with Debian's clang-14 and
 * wasi-libc into a WASI preview 1 reactor module, then made a component with wasmtime's
 * preview 1 adapter (tools/c-component). `run` gets the typed task record, logs through the
 * typed `log` import, and returns its output as JSON text or a typed error: here, the size of
 * its upstream outputs and how many tasks produced them. With `"fail":"transient"` in its
 * parameters it returns a transient error, which the task's retry policy retries.
 *
 * Build: scripts/build-languages.sh (the steps are in docs/languages/c.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

/* `s` as a NUL-terminated copy (the bindings' strings are pointer and length). */
static char *cstr(const plugin_string_t *s) {
    char *out = malloc(s->len + 1);
    if (!out) abort();
    memcpy(out, s->ptr, s->len);
    out[s->len] = '\0';
    return out;
}

static void log_record(bulkhead_plugin_log_level_t level, const char *msg, const char *key,
                       const char *value) {
    plugin_string_t message;
    plugin_string_set(&message, msg);
    plugin_tuple2_string_string_t field;
    plugin_string_set(&field.f0, key);
    plugin_string_set(&field.f1, value);
    plugin_list_tuple2_string_string_t fields = {.ptr = &field, .len = 1};
    bulkhead_plugin_log_log(level, &message, &fields);
}

/* The number of top-level keys of a JSON object written as text (upstream task ids). */
static size_t top_level_keys(const char *json) {
    size_t keys = 0;
    int depth = 0, in_string = 0;
    for (const char *p = json; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == '"') in_string = 0;
        } else if (*p == '"') {
            in_string = 1;
            if (depth == 1) {
                /* A string at depth 1 followed by ':' is a key. */
                const char *q = p + 1;
                while (*q && !(*q == '"' && q[-1] != '\\')) q++;
                const char *r = *q ? q + 1 : q;
                while (*r == ' ') r++;
                if (*r == ':') keys++;
            }
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            depth--;
        }
    }
    return keys;
}

bool exports_plugin_run(plugin_task_t *task, plugin_string_t *ret, plugin_task_error_t *err) {
    char *params = cstr(&task->params);
    char *inputs = cstr(&task->inputs);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%u", (unsigned)task->attempt);
    bool ok;
    if (strstr(params, "\"fail\":\"transient\"")) {
        log_record(BULKHEAD_PLUGIN_TYPES_LEVEL_WARN, "asked to fail; try again", "attempt", attempt);
        err->kind = BULKHEAD_PLUGIN_TYPES_ERROR_KIND_TRANSIENT;
        plugin_string_dup(&err->message, "asked to fail (params.fail = transient)");
        ok = false;
    } else {
        char out[160];
        snprintf(out, sizeof out,
                 "{\"language\":\"c\",\"abi\":2,\"input_bytes\":%zu,\"upstream_tasks\":%zu}",
                 strlen(inputs), top_level_keys(inputs));
        log_record(BULKHEAD_PLUGIN_TYPES_LEVEL_INFO, "measured", "attempt", attempt);
        plugin_string_dup(ret, out);
        ok = true;
    }
    free(params);
    free(inputs);
    plugin_task_free(task);
    return ok;
}
