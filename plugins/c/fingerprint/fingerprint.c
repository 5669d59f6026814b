/* A Bulkhead task in C (ABI v1: a WASI preview 1 command), built with Debian's clang and
 * wasi-libc. It reads the task document from stdin and writes, as its output, the size and the
 * 64-bit FNV-1a hash of the part that names its upstream outputs (`"inputs": ...`, to the end
 * of the document): a fingerprint of the data it was given. It logs one structured record to
 * stderr. If the document holds `"fail":"transient"` it exits 75 (EX_TEMPFAIL), which the host
 * records as a transient failure and retries under the task's retry policy.
 *
 * Build: clang-14 --target=wasm32-wasi --sysroot=/usr -O2 -o fingerprint.wasm fingerprint.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    size_t cap = 1 << 16, len = 0;
    char *doc = malloc(cap);
    if (!doc) return 1;
    size_t n;
    while ((n = fread(doc + len, 1, cap - len, stdin)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            char *bigger = realloc(doc, cap);
            if (!bigger) return 1;
            doc = bigger;
        }
    }
    doc[len < cap ? len : cap - 1] = '\0';
    if (strstr(doc, "\"fail\":\"transient\"")) {
        fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"asked to fail; try again\"}\n");
        return 75;
    }
    const char *inputs = strstr(doc, "\"inputs\":");
    const char *from = inputs ? inputs : doc;
    size_t size = len - (size_t)(from - doc);
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++) {
        hash ^= (unsigned char)from[i];
        hash *= 0x100000001b3ULL;
    }
    printf("{\"language\":\"c\",\"input_bytes\":%zu,\"fnv1a64\":\"%016llx\"}\n", size,
           (unsigned long long)hash);
    fprintf(stderr, "{\"level\":\"info\",\"msg\":\"fingerprinted\",\"bytes\":%zu}\n", size);
    free(doc);
    return 0;
}
