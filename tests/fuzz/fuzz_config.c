/* fuzz_config.c - libFuzzer target for the configuration parser. Any input
 * must either load or fail with one non-empty error line; a loaded snapshot
 * must dump, reload from its own dump and dump the same text again.
 * Single-threaded. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* dump_text - cfg_dump into a malloc'd string. */
static char *dump_text(const struct config *c, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        abort();
    cfg_dump(c, f);
    fclose(f);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct config *c = cfg_load_string("fuzz.conf", (const char *)data, size, err, sizeof err);
    if (!c) {
        if (err[0] == 0 || strchr(err, '\n'))
            abort(); /* errors are exactly one non-empty line */
        return 0;
    }
    size_t l1, l2;
    char *d1 = dump_text(c, &l1);
    struct config *c2 = cfg_load_string("dump", d1, l1, err, sizeof err);
    if (!c2) {
        fprintf(stderr, "dump does not reload: %s\n%s", err, d1);
        abort();
    }
    char *d2 = dump_text(c2, &l2);
    if (l1 != l2 || memcmp(d1, d2, l1) != 0)
        abort(); /* dump is a fixed point */
    if (c->nlocal_domains &&
        cfg_local_domain_index(c, c->local_domains[0], strlen(c->local_domains[0])) != 0)
        abort();
    free(d1);
    free(d2);
    cfg_free(c2);
    cfg_free(c);
    return 0;
}
