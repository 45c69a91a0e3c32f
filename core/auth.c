/* auth.c - SMTP AUTH helpers behind auth.h: strict base64, SASL PLAIN and
 * LOGIN response decoding with limits, and masking of AUTH lines for the
 * log. Pure functions over bytes; any thread. */
#include "auth.h"

#include <string.h>

#include "util.h"

#define AUTH_B64_PAD '='
#define AUTH_CANCEL '*'
#define AUTH_MASK_TEXT "****"
#define AUTH_MASK " " AUTH_MASK_TEXT
#define AUTH_VERB "AUTH"

static const char auth_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* auth_b64_quad - decode one group of 4 characters of which the last pad
 * are '='; false on a bad character or non-zero pad bits. */
static bool auth_b64_quad(const char *q, size_t pad, unsigned char *out)
{
    int v[4] = {0, 0, 0, 0};
    for (size_t j = 0; j < 4 - pad; j++)
        if ((v[j] = mx_b64_val((unsigned char)q[j])) < 0)
            return false;
    if ((pad == 1 && (v[2] & 0x3)) || (pad == 2 && (v[1] & 0xf)))
        return false; /* non-canonical: bits past the data must be zero */
    unsigned bits =
        (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
    unsigned char b[3] = {(unsigned char)(bits >> 16), (unsigned char)(bits >> 8),
                          (unsigned char)bits};
    memcpy(out, b, 3 - pad);
    return true;
}

/* auth_b64_len - decoded length of a base64 text of len characters
 * (padding counted); false when len is not a multiple of 4. */
static bool auth_b64_len(const char *in, size_t len, size_t *n)
{
    if (len % 4 != 0)
        return false;
    size_t pad = 0;
    if (len && in[len - 1] == AUTH_B64_PAD)
        pad = len >= 2 && in[len - 2] == AUTH_B64_PAD ? 2 : 1;
    *n = AUTH_B64_DEC_MAX(len) - pad;
    return true;
}

/* auth_b64_decode - strict RFC 4648 base64 decoding. */
bool auth_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
    size_t n;
    if (!auth_b64_len(in, len, &n) || n > cap)
        return false;
    size_t pad = AUTH_B64_DEC_MAX(len) - n;
    for (size_t i = 0; i < len; i += 4)
        if (!auth_b64_quad(in + i, i + 4 == len ? pad : 0, out + i / 4 * 3))
            return false;
    *outlen = n;
    return true;
}

/* auth_b64_encode - base64 encoding with padding. */
size_t auth_b64_encode(const void *in, size_t len, char *out, size_t cap)
{
    const unsigned char *p = in;
    if (len > (SIZE_MAX - 3) / 4 * 3 || AUTH_B64_ENC_LEN(len) >= cap) {
        if (cap && len == 0)
            out[0] = 0;
        return 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        size_t left = len - i;
        unsigned bits = (unsigned)p[i] << 16 | (left > 1 ? (unsigned)p[i + 1] << 8 : 0) |
                        (left > 2 ? p[i + 2] : 0);
        out[o++] = auth_b64_alphabet[bits >> 18 & 0x3f];
        out[o++] = auth_b64_alphabet[bits >> 12 & 0x3f];
        out[o++] = left > 1 ? auth_b64_alphabet[bits >> 6 & 0x3f] : AUTH_B64_PAD;
        out[o++] = left > 2 ? auth_b64_alphabet[bits & 0x3f] : AUTH_B64_PAD;
    }
    out[o] = 0;
    return o;
}

/* auth_mech_parse - mechanism by name. */
enum auth_mech auth_mech_parse(const char *name, size_t len)
{
    if (len == 5 && mx_memcaseeq(name, "PLAIN", 5))
        return AUTH_MECH_PLAIN;
    if (len == 5 && mx_memcaseeq(name, "LOGIN", 5))
        return AUTH_MECH_LOGIN;
    return AUTH_MECH_UNKNOWN;
}

/* auth_mech_name - name of a mechanism. */
const char *auth_mech_name(enum auth_mech m)
{
    switch (m) {
    case AUTH_MECH_PLAIN: return "PLAIN";
    case AUTH_MECH_LOGIN: return "LOGIN";
    default: return "";
    }
}

/* auth_token - the next space-delimited token of p[*i..len); advances *i
 * past it and the spaces after it. */
static size_t auth_token(const char *p, size_t len, size_t *i, const char **tok)
{
    while (*i < len && p[*i] == ' ')
        (*i)++;
    *tok = p + *i;
    size_t start = *i;
    while (*i < len && p[*i] != ' ')
        (*i)++;
    size_t n = *i - start;
    while (*i < len && p[*i] == ' ')
        (*i)++;
    return n;
}

/* auth_cmd_parse - split the arguments of AUTH. */
bool auth_cmd_parse(const char *args, size_t len, struct auth_cmd *out)
{
    size_t i = 0;
    const char *mech, *init;
    size_t mlen = auth_token(args, len, &i, &mech);
    size_t ilen = auth_token(args, len, &i, &init);
    if (mlen == 0 || i != len)
        return false;
    out->mech = auth_mech_parse(mech, mlen);
    out->initial = ilen ? init : NULL;
    out->initial_len = ilen;
    return true;
}

/* auth_is_cancel - is this response the SASL cancel "*"?. */
bool auth_is_cancel(const char *line, size_t len)
{
    return len == 1 && line[0] == AUTH_CANCEL;
}

/* auth_decode_response - a client response: "*" cancels, "=" is empty,
 * else strict base64 of at most maxlen decoded octets into buf. */
static enum auth_rc auth_decode_response(const char *b64, size_t len, size_t maxlen,
                                         unsigned char *buf, size_t cap, size_t *n)
{
    *n = 0;
    if (auth_is_cancel(b64, len))
        return AUTH_ERR_CANCEL;
    if (len == 1 && b64[0] == AUTH_B64_PAD)
        return AUTH_OK;
    size_t want;
    if (!auth_b64_len(b64, len, &want))
        return AUTH_ERR_BASE64;
    if (want > maxlen || want > cap)
        return AUTH_ERR_TOO_LONG;
    return auth_b64_decode(b64, len, buf, cap, n) ? AUTH_OK : AUTH_ERR_BASE64;
}

/* auth_user_ok - check a user name's length and octets. */
static enum auth_rc auth_user_ok(const unsigned char *u, size_t n)
{
    if (n == 0)
        return AUTH_ERR_EMPTY;
    if (n > AUTH_USER_MAX)
        return AUTH_ERR_TOO_LONG;
    for (size_t i = 0; i < n; i++)
        if (u[i] < 0x20 || u[i] == 0x7f)
            return AUTH_ERR_BAD_CHAR;
    return AUTH_OK;
}

/* auth_pass_ok - check a password's length and octets. */
static enum auth_rc auth_pass_ok(const unsigned char *p, size_t n)
{
    if (n == 0)
        return AUTH_ERR_EMPTY;
    if (n > AUTH_PASS_MAX)
        return AUTH_ERR_TOO_LONG;
    return memchr(p, 0, n) ? AUTH_ERR_BAD_CHAR : AUTH_OK;
}

/* auth_plain_decode - decode and check a SASL PLAIN response. */
enum auth_rc auth_plain_decode(const char *b64, size_t len, unsigned char *buf, size_t cap,
                               struct auth_creds *creds)
{
    size_t n;
    enum auth_rc rc = auth_decode_response(b64, len, AUTH_DECODED_MAX, buf, cap, &n);
    if (rc != AUTH_OK)
        return rc;
    const unsigned char *z1 = memchr(buf, 0, n);
    const unsigned char *z2 = z1 ? memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - buf)) : NULL;
    if (!z2)
        return AUTH_ERR_SYNTAX;
    size_t zlen = (size_t)(z1 - buf);
    const unsigned char *user = z1 + 1, *pass = z2 + 1;
    size_t ulen = (size_t)(z2 - user), plen = n - (size_t)(pass - buf);
    if (memchr(pass, 0, plen))
        return AUTH_ERR_SYNTAX; /* more than three fields */
    if (zlen > AUTH_USER_MAX)
        return AUTH_ERR_TOO_LONG;
    if ((rc = auth_user_ok(user, ulen)) != AUTH_OK || (rc = auth_pass_ok(pass, plen)) != AUTH_OK)
        return rc;
    if (zlen && (zlen != ulen || memcmp(buf, user, ulen) != 0))
        return AUTH_ERR_AUTHZID;
    *creds = (struct auth_creds){(const char *)user, ulen, (const char *)pass, plen};
    return AUTH_OK;
}

/* auth_login_user - decode and check the LOGIN user name response. */
enum auth_rc auth_login_user(const char *b64, size_t len, unsigned char *buf, size_t cap,
                             size_t *out_len)
{
    size_t n;
    enum auth_rc rc = auth_decode_response(b64, len, AUTH_USER_MAX, buf, cap, &n);
    if (rc == AUTH_OK && (rc = auth_user_ok(buf, n)) == AUTH_OK)
        *out_len = n;
    return rc;
}

/* auth_login_pass - decode and check the LOGIN password response. */
enum auth_rc auth_login_pass(const char *b64, size_t len, unsigned char *buf, size_t cap,
                             size_t *out_len)
{
    size_t n;
    enum auth_rc rc = auth_decode_response(b64, len, AUTH_PASS_MAX, buf, cap, &n);
    if (rc == AUTH_OK && (rc = auth_pass_ok(buf, n)) == AUTH_OK)
        *out_len = n;
    return rc;
}

/* auth_rc_text - log reason of a decoding result. */
const char *auth_rc_text(enum auth_rc rc)
{
    static const char *const text[] = {
        [AUTH_OK] = "ok",
        [AUTH_ERR_CANCEL] = "cancelled by the client",
        [AUTH_ERR_BASE64] = "invalid base64",
        [AUTH_ERR_SYNTAX] = "malformed PLAIN response",
        [AUTH_ERR_TOO_LONG] = "response too long",
        [AUTH_ERR_EMPTY] = "empty user name or password",
        [AUTH_ERR_AUTHZID] = "authorization identity differs from the user",
        [AUTH_ERR_BAD_CHAR] = "control character in user name or NUL in password",
    };
    return (unsigned)rc < MX_ARRAY_LEN(text) ? text[rc] : "unknown";
}

/* auth_mech_char - octets of a SASL mechanism name (RFC 4422 3.1). */
static bool auth_mech_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* auth_mask_line - log text of an AUTH command line, payload masked. */
size_t auth_mask_line(const char *line, size_t len, char *out, size_t cap)
{
    size_t i = 0, o = sizeof(AUTH_VERB) - 1;
    const char *tok;
    if (cap < AUTH_MASK_MAX) {
        if (cap)
            out[0] = 0;
        return 0;
    }
    memcpy(out, AUTH_VERB, o);
    auth_token(line, len, &i, &tok); /* the verb itself */
    size_t mlen = auth_token(line, len, &i, &tok);
    bool valid = mlen > 0 && mlen <= AUTH_MECH_MAX;
    for (size_t k = 0; valid && k < mlen; k++)
        valid = auth_mech_char((unsigned char)tok[k]);
    if (valid) {
        out[o++] = ' ';
        for (size_t k = 0; k < mlen; k++)
            out[o++] = (char)((tok[k] >= 'a' && tok[k] <= 'z') ? tok[k] - 32 : tok[k]);
    }
    if (i < len || (!valid && mlen > 0)) {
        memcpy(out + o, AUTH_MASK, sizeof(AUTH_MASK) - 1);
        o += sizeof(AUTH_MASK) - 1;
    }
    out[o] = 0;
    return o;
}

/* auth_mask_response - log text of a response inside an AUTH dialogue. */
size_t auth_mask_response(const char *line, size_t len, char *out, size_t cap)
{
    const char *text = auth_is_cancel(line, len) ? "*" : AUTH_MASK_TEXT;
    size_t n = strlen(text);
    if (cap <= n) {
        if (cap)
            out[0] = 0;
        return 0;
    }
    memcpy(out, text, n + 1);
    return n;
}
