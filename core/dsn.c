/* dsn.c - builds RFC 3464 bounce messages (pure formatting). Any thread.
 * (stub: being implemented) */
#include "dsn.h"

#include <stdio.h>

bool dsn_build(const struct dsn_in *in, struct sb *out, bool *eightbit, bool *utf8)
{
    (void)in, (void)out, (void)eightbit, (void)utf8;
    return false;
}

bool dsn_wanted(const char *sender) { return sender && *sender; }

void dsn_date(int64_t t, char *buf, size_t len) { (void)t; snprintf(buf, len, "-"); }
