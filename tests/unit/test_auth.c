/* test_auth.c - unit tests of core/auth.c: strict base64 both ways (RFC
 * 4648 vectors, junk, padding, non-canonical bits, sizes), SASL PLAIN good
 * and bad forms, LOGIN steps, AUTH argument parsing and log masking.
 * Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "auth.h"

#include <stdio.h>
#include <string.h>

/* S - a string literal and its length. */
#define S(x) (x), (sizeof(x) - 1)

static unsigned char buf[AUTH_DECODED_MAX + 16];

/* b64 - encode n bytes into a static string (test helper). */
static const char *b64(const void *p, size_t n)
{
    static char out[2 * AUTH_B64_MAX];
    size_t len = auth_b64_encode(p, n, out, sizeof out);
    assert_int_equal(len, AUTH_B64_ENC_LEN(n));
    return out;
}

/* plain - decode a PLAIN response given as base64 text. */
static enum auth_rc plain(const char *text, struct auth_creds *c)
{
    return auth_plain_decode(text, strlen(text), buf, sizeof buf, c);
}

/* plain_raw - PLAIN decode of raw bytes (encoded first). */
static enum auth_rc plain_raw(const void *raw, size_t n, struct auth_creds *c)
{
    return plain(b64(raw, n), c);
}

/* test_auth_b64_rfc4648 - the RFC 4648 section 10 test vectors, both ways. */
static void test_auth_b64_rfc4648(void **state)
{
    (void)state;
    static const char *const vec[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        char out[16];
        size_t n = auth_b64_encode(vec[i][0], strlen(vec[i][0]), out, sizeof out);
        assert_int_equal(n, strlen(vec[i][1]));
        assert_string_equal(out, vec[i][1]);
        size_t dn = 99;
        assert_true(auth_b64_decode(vec[i][1], strlen(vec[i][1]), buf, sizeof buf, &dn));
        assert_int_equal(dn, strlen(vec[i][0]));
        assert_memory_equal(buf, vec[i][0], dn);
    }
    assert_string_equal(b64("Username:", 9), AUTH_LOGIN_PROMPT_USER);
    assert_string_equal(b64("Password:", 9), AUTH_LOGIN_PROMPT_PASS);
}

/* test_auth_b64_all_bytes - every byte value survives a round trip. */
static void test_auth_b64_all_bytes(void **state)
{
    (void)state;
    unsigned char raw[256], back[256];
    for (int i = 0; i < 256; i++)
        raw[i] = (unsigned char)(255 - i);
    for (size_t n = 0; n <= sizeof raw; n += 1 + n / 16) {
        const char *t = b64(raw, n);
        size_t dn;
        assert_true(auth_b64_decode(t, strlen(t), back, n, &dn)); /* exact cap */
        assert_int_equal(dn, n);
        assert_memory_equal(back, raw, n);
        if (n)
            assert_false(auth_b64_decode(t, strlen(t), back, n - 1, &dn));
    }
}

/* test_auth_b64_rejects_junk - strictness: length, alphabet, whitespace,
 * padding position, non-zero pad bits, URL-safe alphabet. */
static void test_auth_b64_rejects_junk(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg=",  "Zg",   "Z",    "Zm9",    "Zm9vY", "Zg==Zg==", "Z===",
        "====", "=Zg=", "Zm=v", "Zm9v\n", " Zm9v", "Zm 9v",    "Zm9v\r\n",
        "Zh==", "Zm9=", "Zm-v", "Zm_v",   "Zm9v!", "Zm9v====", "Zm\0v",
    };
    size_t n;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = strlen(bad[i]);
        if (i == sizeof bad / sizeof bad[0] - 1)
            len = 4; /* embedded NUL */
        if (auth_b64_decode(bad[i], len, buf, sizeof buf, &n))
            fail_msg("accepted \"%s\"", bad[i]);
    }
    char small[5];
    assert_int_equal(auth_b64_encode("foob", 4, small, sizeof small), 0); /* needs 9 */
    assert_int_equal(auth_b64_encode("foo", 3, small, sizeof small), 4);
    assert_string_equal(small, "Zm9v");
    assert_int_equal(auth_b64_encode("foo", 3, small, 4), 0); /* no room for NUL */
}

/* test_auth_plain_good - accepted PLAIN forms, pointing into the buffer. */
static void test_auth_plain_good(void **state)
{
    (void)state;
    struct auth_creds c;
    /* RFC 4616 example without authzid: "\0tim\0tanstaaftanstaaf" */
    assert_int_equal(plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &c), AUTH_OK);
    assert_int_equal(c.user_len, 3);
    assert_memory_equal(c.user, "tim", 3);
    assert_int_equal(c.pass_len, 16);
    assert_memory_equal(c.pass, "tanstaaftanstaaf", 16);
    assert_true((const unsigned char *)c.user >= buf &&
                (const unsigned char *)c.user < buf + sizeof buf);

    assert_int_equal(plain_raw(S("a@x.test\0a@x.test\0p w\xc3\xa9"), &c), AUTH_OK);
    assert_memory_equal(c.user, "a@x.test", c.user_len);
    assert_int_equal(c.pass_len, 5);

    char big[AUTH_DECODED_MAX];
    memset(big, 'u', AUTH_USER_MAX);
    big[AUTH_USER_MAX] = 0;
    memset(big + AUTH_USER_MAX + 1, 'u', AUTH_USER_MAX);
    big[2 * AUTH_USER_MAX + 1] = 0;
    memset(big + 2 * AUTH_USER_MAX + 2, 'p', AUTH_PASS_MAX);
    assert_int_equal(plain_raw(big, sizeof big, &c), AUTH_OK); /* every field at its limit */
    assert_int_equal(c.user_len, AUTH_USER_MAX);
    assert_int_equal(c.pass_len, AUTH_PASS_MAX);
}

/* test_auth_plain_bad - each malformed PLAIN response gets its reason. */
static void test_auth_plain_bad(void **state)
{
    (void)state;
    struct auth_creds c;
    assert_int_equal(plain("*", &c), AUTH_ERR_CANCEL);
    assert_int_equal(plain("=", &c), AUTH_ERR_SYNTAX);
    assert_int_equal(plain("", &c), AUTH_ERR_SYNTAX);
    assert_int_equal(plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm=", &c), AUTH_ERR_BASE64);
    assert_int_equal(plain("AHRpbQB0YW5zdGFhZnRhbnN0YWF", &c), AUTH_ERR_BASE64);
    assert_int_equal(plain("AHRpbQB0YW5zd GFhZnRhbnN0YWFm", &c), AUTH_ERR_BASE64);
    assert_int_equal(plain_raw(S("timpass"), &c), AUTH_ERR_SYNTAX);
    assert_int_equal(plain_raw(S("\0timpass"), &c), AUTH_ERR_SYNTAX);
    assert_int_equal(plain_raw(S("\0tim\0pa\0ss"), &c), AUTH_ERR_SYNTAX);
    assert_int_equal(plain_raw(S("\0\0pass"), &c), AUTH_ERR_EMPTY);
    assert_int_equal(plain_raw(S("\0tim\0"), &c), AUTH_ERR_EMPTY);
    assert_int_equal(plain_raw(S("bob\0tim\0pass"), &c), AUTH_ERR_AUTHZID);
    assert_int_equal(plain_raw(S("TIM\0tim\0pass"), &c), AUTH_ERR_AUTHZID);
    assert_int_equal(plain_raw(S("tim\0tim\0pass"), &c), AUTH_OK);
    assert_int_equal(plain_raw(S("\0ti\nm\0pass"), &c), AUTH_ERR_BAD_CHAR);
    assert_int_equal(plain_raw(S("\0ti\x7fm\0pass"), &c), AUTH_ERR_BAD_CHAR);

    char big[AUTH_DECODED_MAX + 1];
    memset(big, 'p', sizeof big);
    big[0] = 0;
    big[1] = 'u';
    big[2] = 0;
    assert_int_equal(plain_raw(big, AUTH_PASS_MAX + 4, &c), AUTH_ERR_TOO_LONG); /* password */
    big[2] = 'u';
    big[AUTH_USER_MAX + 2] = 0;
    assert_int_equal(plain_raw(big, AUTH_USER_MAX + 4, &c), AUTH_ERR_TOO_LONG); /* user */
    assert_int_equal(plain_raw(big, sizeof big, &c), AUTH_ERR_TOO_LONG);        /* whole */
    /* A small caller buffer is "too long", never an overflow. */
    const char *t = b64(S("\0tim\0tanstaaf"));
    assert_int_equal(auth_plain_decode(t, strlen(t), buf, 8, &c), AUTH_ERR_TOO_LONG);
}

/* test_auth_login_steps - LOGIN user and password responses. */
static void test_auth_login_steps(void **state)
{
    (void)state;
    size_t n = 0;
    assert_int_equal(auth_login_user(S("dGltQHgudGVzdA=="), buf, sizeof buf, &n), AUTH_OK);
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "tim@x.test", 10);
    assert_int_equal(auth_login_pass(S("c2VjcmV0"), buf, sizeof buf, &n), AUTH_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "secret", 6);
    assert_int_equal(auth_login_user(S("*"), buf, sizeof buf, &n), AUTH_ERR_CANCEL);
    assert_int_equal(auth_login_pass(S("*"), buf, sizeof buf, &n), AUTH_ERR_CANCEL);
    assert_int_equal(auth_login_user(S("="), buf, sizeof buf, &n), AUTH_ERR_EMPTY);
    assert_int_equal(auth_login_pass(S("="), buf, sizeof buf, &n), AUTH_ERR_EMPTY);
    assert_int_equal(auth_login_user(S("dGlt\r\n"), buf, sizeof buf, &n), AUTH_ERR_BASE64);
    assert_int_equal(auth_login_user(S("dA0KdA=="), buf, sizeof buf, &n), AUTH_ERR_BAD_CHAR);
    assert_int_equal(auth_login_pass(S("cwBz"), buf, sizeof buf, &n), AUTH_ERR_BAD_CHAR);
    char big[AUTH_PASS_MAX + 1];
    memset(big, 'x', sizeof big);
    assert_int_equal(auth_login_pass(b64(big, AUTH_PASS_MAX), AUTH_B64_ENC_LEN(AUTH_PASS_MAX), buf,
                                     AUTH_PASS_MAX, &n),
                     AUTH_OK);
    assert_int_equal(n, AUTH_PASS_MAX);
    assert_int_equal(
        auth_login_pass(b64(big, sizeof big), AUTH_B64_ENC_LEN(sizeof big), buf, sizeof buf, &n),
        AUTH_ERR_TOO_LONG);
    assert_int_equal(auth_login_user(b64(big, AUTH_USER_MAX + 1),
                                     AUTH_B64_ENC_LEN(AUTH_USER_MAX + 1), buf, sizeof buf, &n),
                     AUTH_ERR_TOO_LONG);
    for (int rc = AUTH_OK; rc <= AUTH_ERR_BAD_CHAR; rc++)
        assert_true(strlen(auth_rc_text((enum auth_rc)rc)) > 1);
    assert_string_equal(auth_rc_text((enum auth_rc)99), "unknown");
}

/* test_auth_cmd_parse - mechanism and optional initial response. */
static void test_auth_cmd_parse(void **state)
{
    (void)state;
    struct auth_cmd c;
    assert_true(auth_cmd_parse(S("PLAIN AHRpbQB0aW0="), &c));
    assert_int_equal(c.mech, AUTH_MECH_PLAIN);
    assert_int_equal(c.initial_len, 12);
    assert_memory_equal(c.initial, "AHRpbQB0aW0=", 12);
    assert_true(auth_cmd_parse(S("login"), &c));
    assert_int_equal(c.mech, AUTH_MECH_LOGIN);
    assert_null(c.initial);
    assert_true(auth_cmd_parse(S("Plain ="), &c));
    assert_int_equal(c.mech, AUTH_MECH_PLAIN);
    assert_int_equal(c.initial_len, 1);
    assert_true(auth_cmd_parse(S("CRAM-MD5"), &c));
    assert_int_equal(c.mech, AUTH_MECH_UNKNOWN);
    assert_true(auth_cmd_parse(S("LOGIN  "), &c));
    assert_null(c.initial);
    assert_false(auth_cmd_parse(S(""), &c));
    assert_false(auth_cmd_parse(S("   "), &c));
    assert_false(auth_cmd_parse(S("PLAIN a b"), &c));
    assert_int_equal(auth_mech_parse(S("PLAINX")), AUTH_MECH_UNKNOWN);
    assert_string_equal(auth_mech_name(AUTH_MECH_LOGIN), "LOGIN");
    assert_string_equal(auth_mech_name(AUTH_MECH_UNKNOWN), "");
    assert_true(auth_is_cancel(S("*")));
    assert_false(auth_is_cancel(S("**")));
}

/* mask - auth_mask_line into a string. */
static const char *mask(const char *line)
{
    static char out[AUTH_MASK_MAX];
    size_t n = auth_mask_line(line, strlen(line), out, sizeof out);
    assert_int_equal(n, strlen(out));
    assert_true(n < AUTH_MASK_MAX);
    return out;
}

/* test_auth_mask - the payload never survives masking. */
static void test_auth_mask(void **state)
{
    (void)state;
    assert_string_equal(mask("AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm"), "AUTH PLAIN ****");
    assert_string_equal(mask("auth plain ="), "AUTH PLAIN ****");
    assert_string_equal(mask("AUTH LOGIN"), "AUTH LOGIN");
    assert_string_equal(mask("AUTH login dGlt"), "AUTH LOGIN ****");
    assert_string_equal(mask("AUTH   PLAIN   secret  "), "AUTH PLAIN ****");
    assert_string_equal(mask("AUTH PLAIN "), "AUTH PLAIN");
    assert_string_equal(mask("AUTH"), "AUTH");
    assert_string_equal(mask("AUTH s3cr3t!pass"), "AUTH ****");           /* not a SASL name */
    assert_string_equal(mask("AUTH ABCDEFGHIJKLMNOPQRSTU"), "AUTH ****"); /* 21 > 20 */
    assert_string_equal(mask("AUTH ABCDEFGHIJKLMNOPQRST x"), "AUTH ABCDEFGHIJKLMNOPQRST ****");
    assert_string_equal(mask("AUTH CRAM-MD5 dGlt"), "AUTH CRAM-MD5 ****");
    char out[AUTH_MASK_MAX];
    assert_int_equal(auth_mask_line(S("AUTH PLAIN x"), out, AUTH_MASK_MAX - 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(auth_mask_response(S("dGlt"), out, sizeof out), 4);
    assert_string_equal(out, "****");
    assert_int_equal(auth_mask_response(S("*"), out, sizeof out), 1);
    assert_string_equal(out, "*");
    assert_int_equal(auth_mask_response(S("x"), out, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_b64_rfc4648),      cmocka_unit_test(test_auth_b64_all_bytes),
        cmocka_unit_test(test_auth_b64_rejects_junk), cmocka_unit_test(test_auth_plain_good),
        cmocka_unit_test(test_auth_plain_bad),        cmocka_unit_test(test_auth_login_steps),
        cmocka_unit_test(test_auth_cmd_parse),        cmocka_unit_test(test_auth_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
