/* fuzz_auth.c - libFuzzer target for the SMTP AUTH helpers (core/auth.c):
 * the input is tried as base64 (a successful decode must re-encode to the
 * same text), as PLAIN and LOGIN responses (credentials must point inside
 * the buffer, within the limits, without NUL), as AUTH arguments, and as an
 * AUTH line to mask (the masked text must never contain the payload).
 * Single-threaded. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char fuzz_buf[AUTH_DECODED_MAX];

/* fuzz_b64 - decode; a success must round-trip to the identical text. */
static void fuzz_b64(const char *in, size_t size)
{
    static char enc[2 * AUTH_B64_MAX + 8];
    size_t n;
    if (!auth_b64_decode(in, size, fuzz_buf, sizeof fuzz_buf, &n))
        return;
    if (n > AUTH_B64_DEC_MAX(size))
        abort();
    size_t e = auth_b64_encode(fuzz_buf, n, enc, sizeof enc);
    if (e != size || memcmp(enc, in, size) != 0)
        abort(); /* strict base64 has exactly one encoding */
}

/* fuzz_plain - PLAIN results must respect the documented limits. */
static void fuzz_plain(const char *in, size_t size)
{
    struct auth_creds c;
    if (auth_plain_decode(in, size, fuzz_buf, sizeof fuzz_buf, &c) != AUTH_OK)
        return;
    const char *lo = (const char *)fuzz_buf, *hi = lo + sizeof fuzz_buf;
    if (c.user < lo || c.user + c.user_len > hi || c.pass < lo || c.pass + c.pass_len > hi)
        abort();
    if (!c.user_len || c.user_len > AUTH_USER_MAX || !c.pass_len || c.pass_len > AUTH_PASS_MAX)
        abort();
    if (memchr(c.user, 0, c.user_len) || memchr(c.pass, 0, c.pass_len))
        abort();
}

/* fuzz_login - LOGIN steps: lengths within the limits. */
static void fuzz_login(const char *in, size_t size)
{
    size_t n = 0;
    if (auth_login_user(in, size, fuzz_buf, sizeof fuzz_buf, &n) == AUTH_OK &&
        (n == 0 || n > AUTH_USER_MAX || memchr(fuzz_buf, 0, n)))
        abort();
    if (auth_login_pass(in, size, fuzz_buf, sizeof fuzz_buf, &n) == AUTH_OK &&
        (n == 0 || n > AUTH_PASS_MAX || memchr(fuzz_buf, 0, n)))
        abort();
}

/* fuzz_mask - the masked line has the shape "AUTH[ MECH][ ****]" with MECH
 * an upper-case SASL name of at most 20 octets: nothing else can leak. */
static void fuzz_mask(const char *in, size_t size)
{
    char out[AUTH_MASK_MAX];
    size_t n = auth_mask_line(in, size, out, sizeof out);
    if (n >= sizeof out || strlen(out) != n || memcmp(out, "AUTH", 4) != 0)
        abort();
    size_t i = 4, m = 0;
    if (n >= 9 && memcmp(out + n - 5, " ****", 5) == 0)
        n -= 5;
    if (i < n && out[i++] != ' ')
        abort();
    for (; i < n; i++, m++)
        if (!((out[i] >= 'A' && out[i] <= 'Z') || (out[i] >= '0' && out[i] <= '9') ||
              out[i] == '-' || out[i] == '_'))
            abort();
    if (m > AUTH_MECH_MAX)
        abort();
    struct auth_cmd cmd;
    if (auth_cmd_parse(in, size, &cmd) && cmd.initial &&
        (cmd.initial < in || cmd.initial + cmd.initial_len > in + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    fuzz_b64(in, size);
    fuzz_plain(in, size);
    fuzz_login(in, size);
    fuzz_mask(in, size);
    return 0;
}
