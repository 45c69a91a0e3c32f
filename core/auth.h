/* auth.h - pure helpers for SMTP AUTH (RFC 4954) with the SASL mechanisms
 * PLAIN (RFC 4616) and LOGIN: strict base64 (RFC 4648), decoding of client
 * responses into credentials, and the masked text of AUTH lines for the log.
 * No I/O, no allocation, no global state: callable from any thread, fuzzable.
 * Decoded buffers hold passwords: callers wipe them (explicit_bzero). */
#ifndef MXRING_AUTH_H
#define MXRING_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_USER_MAX 255 /* authcid/authzid octets (addresses are <= 256) */
#define AUTH_PASS_MAX 256 /* password octets */
#define AUTH_MECH_MAX 20  /* SASL mechanism name (RFC 4422 3.1) */
/* Largest decoded PLAIN message, and largest base64 response we decode. */
#define AUTH_DECODED_MAX (AUTH_USER_MAX + 1 + AUTH_USER_MAX + 1 + AUTH_PASS_MAX)
#define AUTH_B64_MAX AUTH_B64_ENC_LEN(AUTH_DECODED_MAX)

/* Base64 sizes: encoded length of n octets; most octets n chars decode to. */
#define AUTH_B64_ENC_LEN(n) ((((n) + 2) / 3) * 4)
#define AUTH_B64_DEC_MAX(n) (((n) / 4) * 3)

/* LOGIN challenges: base64 of "Username:" and "Password:" (send as "334 <x>"). */
#define AUTH_LOGIN_PROMPT_USER "VXNlcm5hbWU6"
#define AUTH_LOGIN_PROMPT_PASS "UGFzc3dvcmQ6"

/* The masked log text of an AUTH line is at most this long (with NUL). */
#define AUTH_MASK_MAX (sizeof("AUTH ") - 1 + AUTH_MECH_MAX + sizeof(" ****"))

enum auth_mech {
    AUTH_MECH_UNKNOWN = 0,
    AUTH_MECH_PLAIN,
    AUTH_MECH_LOGIN,
};

/* Decoding results; auth_rc_text() gives the log reason of each. */
enum auth_rc {
    AUTH_OK = 0,
    AUTH_ERR_CANCEL,   /* the client sent "*": reply 501 */
    AUTH_ERR_BASE64,   /* not strict base64 */
    AUTH_ERR_SYNTAX,   /* PLAIN: not "authzid NUL authcid NUL passwd" */
    AUTH_ERR_TOO_LONG, /* a field or the response exceeds the limits above */
    AUTH_ERR_EMPTY,    /* empty user name or password */
    AUTH_ERR_AUTHZID,  /* PLAIN: authzid given and different from authcid */
    AUTH_ERR_BAD_CHAR, /* control octet (< 0x20, 0x7f) in the user name, NUL in a password */
};

/* auth_creds - a decoded identity; pointers into the caller's buffer, and
 * neither field is NUL-terminated. */
struct auth_creds {
    const char *user; /* authcid */
    size_t user_len;
    const char *pass;
    size_t pass_len;
};

/* auth_cmd - the arguments of "AUTH <mechanism> [initial-response]". */
struct auth_cmd {
    enum auth_mech mech;
    const char *initial; /* the initial response, NULL when absent */
    size_t initial_len;  /* "=" (empty response) is passed as is */
};

/* auth_b64_decode - strict RFC 4648 base64: length a multiple of 4, '='
 * padding only at the end, no whitespace, zero pad bits. Decodes into
 * out[0..cap) and sets *outlen. False on junk or when out is too small. */
bool auth_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen);
/* auth_b64_encode - base64 of in[0..len) with padding, NUL-terminated into
 * out[0..cap); returns the length, or 0 when it does not fit (len 0 gives 0
 * and out ""). */
size_t auth_b64_encode(const void *in, size_t len, char *out, size_t cap);

/* auth_mech_parse - PLAIN or LOGIN by name (ASCII case-insensitive). */
enum auth_mech auth_mech_parse(const char *name, size_t len);
/* auth_mech_name - "PLAIN", "LOGIN", or "" for unknown. */
const char *auth_mech_name(enum auth_mech m);
/* auth_cmd_parse - split the argument text of AUTH (after "AUTH ", no CRLF).
 * False when there is no mechanism or more than one argument after it; an
 * unknown mechanism is not an error here (mech = AUTH_MECH_UNKNOWN). */
bool auth_cmd_parse(const char *args, size_t len, struct auth_cmd *out);

/* auth_is_cancel - is a client response line the SASL cancel "*"? */
bool auth_is_cancel(const char *line, size_t len);

/* auth_plain_decode - decode a PLAIN response (base64, or "=" for empty)
 * into buf[0..cap) (cap >= AUTH_DECODED_MAX suffices) and point creds
 * into it. AUTH_ERR_CANCEL for "*". The authzid must be empty or equal to
 * the authcid (exactly). */
enum auth_rc auth_plain_decode(const char *b64, size_t len, unsigned char *buf, size_t cap,
                               struct auth_creds *creds);
/* auth_login_user - decode the LOGIN user name response into buf[0..cap)
 * (cap >= AUTH_USER_MAX suffices); *out_len set on AUTH_OK. */
enum auth_rc auth_login_user(const char *b64, size_t len, unsigned char *buf, size_t cap,
                             size_t *out_len);
/* auth_login_pass - decode the LOGIN password response likewise (cap >=
 * AUTH_PASS_MAX suffices). */
enum auth_rc auth_login_pass(const char *b64, size_t len, unsigned char *buf, size_t cap,
                             size_t *out_len);

/* auth_rc_text - failure reason for the log ("invalid base64", ...). */
const char *auth_rc_text(enum auth_rc rc);

/* auth_mask_line - the log text of an AUTH command line (no CRLF): "AUTH
 * <MECH>" plus " ****" when anything follows the mechanism. A mechanism
 * that is not a valid SASL name is masked too ("AUTH ****"). Writes at most
 * AUTH_MASK_MAX bytes with NUL into out (cap >= AUTH_MASK_MAX), returns the
 * length. The payload never reaches out. */
size_t auth_mask_line(const char *line, size_t len, char *out, size_t cap);
/* auth_mask_response - log text of a response line inside an AUTH dialogue:
 * "*" for a cancel, "****" otherwise (NUL-terminated; cap >= 5). */
size_t auth_mask_response(const char *line, size_t len, char *out, size_t cap);

#endif
