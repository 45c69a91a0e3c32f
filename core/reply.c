/* reply.c - the reply table: the one place where reply codes and texts of
 * the SMTP dialogue live (texts follow the receiver we model, see
 * shared/seed), each with the kinds of its arguments. Read-only data
 * shared by all threads. */
#include "reply.h"

#include <string.h>

const struct reply_def reply_table[R_COUNT] = {
    [R_BANNER] = {"220 %s ESMTP mxring Receiver", "s"},
    [R_HELO] = {"250 %s Hello [%s], pleased to meet you", "ss"},
    [R_EHLO_FIRST] = {"250-%s Hello [%s], pleased to meet you", "ss"},
    [R_EHLO_PIPELINING] = {"250-PIPELINING", ""},
    [R_EHLO_SIZE] = {"250-SIZE %llu", "u"},
    [R_EHLO_8BITMIME] = {"250-8BITMIME", ""},
    [R_EHLO_SMTPUTF8] = {"250-SMTPUTF8", ""},
    [R_EHLO_DSN] = {"250-DSN", ""},
    [R_EHLO_STARTTLS] = {"250-STARTTLS", ""},
    [R_EHLO_AUTH] = {"250-AUTH PLAIN LOGIN", ""},
    [R_EHLO_LAST] = {"250 ENHANCEDSTATUSCODES", ""},
    [R_SENDER_OK] = {"250 2.1.0 <%s>... Sender ok.", "s"},
    [R_RCPT_OK] = {"250 2.1.5 <%s>... Recipient ok.", "s"},
    [R_DATA_GO] = {"354 Enter mail, end with \".\" on a line by itself", ""},
    [R_MSG_OK] = {"250 2.0.0 Message received ok. id=%s", "s"},
    [R_QUIT] = {"221 2.0.0 %s closing connection.", "s"},
    [R_OK] = {"250 2.0.0 OK", ""},
    [R_RSET] = {"250 2.0.0 Reset state", ""},
    [R_VRFY] = {"252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery", ""},
    [R_HELP] = {"214 2.0.0 Commands: %s", "s"},
    [R_ERR_UNKNOWN] = {"500 5.5.2 Syntax error, command unrecognized", ""},
    [R_ERR_SYNTAX] = {"501 5.5.4 Syntax error in parameters or arguments", ""},
    [R_ERR_HELO_SYNTAX] = {"501 5.5.4 Syntax: %s hostname", "s"},
    [R_ERR_SENDER_SYNTAX] = {"501 5.1.7 Bad sender address syntax", ""},
    [R_ERR_RCPT_SYNTAX] = {"501 5.1.3 Bad recipient address syntax", ""},
    [R_ERR_PARAM] = {"555 5.5.4 MAIL FROM/RCPT TO parameters not recognized or not implemented",
                     ""},
    [R_ERR_DSN_SYNTAX] = {"501 5.5.4 Bad %s parameter syntax (RFC 3461)", "s"},
    [R_ERR_DSN_DUP] = {"501 5.5.4 Duplicate %s parameter", "s"},
    [R_ERR_NEED_HELO] = {"503 5.5.1 Bad sequence of commands: send HELO/EHLO first", ""},
    [R_ERR_NESTED_MAIL] = {"503 5.5.1 Bad sequence of commands: sender already specified", ""},
    [R_ERR_NEED_MAIL] = {"503 5.5.1 Bad sequence of commands: need MAIL before RCPT", ""},
    [R_ERR_NEED_MAIL_DATA] = {"503 5.5.1 Bad sequence of commands: need MAIL before DATA", ""},
    [R_ERR_NEED_RCPT] = {"503 5.5.1 Bad sequence of commands: need RCPT before DATA", ""},
    [R_ERR_NO_VALID_RCPT] = {"554 5.5.1 No valid recipients", ""},
    [R_ERR_TOO_MANY_RCPT] = {"452 4.5.3 Too many recipients", ""},
    [R_ERR_LINE_TOO_LONG] = {"500 5.5.6 Line too long", ""},
    [R_ERR_DATA_LINE_LONG] = {"550 5.5.6 Message refused: a line is longer than 998 characters",
                              ""},
    [R_ERR_BARE_EOL] = {"550 5.5.2 Message refused: bare CR or LF in data is not allowed", ""},
    [R_ERR_DATA_NUL] = {"550 5.6.0 Message refused: NUL characters in data are not allowed", ""},
    [R_ERR_SIZE_MAIL] = {"552 5.3.4 Message size exceeds fixed maximum message size", ""},
    [R_ERR_SIZE_DATA] = {"552 5.3.4 Message size exceeds fixed maximum message size", ""},
    [R_ERR_RELAY] = {"550 5.7.1 <%s>... Relaying denied.", "s"},
    [R_ERR_USER_UNKNOWN] = {"550 5.1.1 <%s>... User unknown.", "s"},
    [R_ERR_NO_ARGS] = {"501 5.5.4 Syntax error: %s takes no arguments", "s"},
    [R_ERR_QUEUE] = {"451 4.3.0 Error: queue file write error, try again later", ""},
    [R_ERR_FILTER_SPAM] = {"554 5.7.1 Requested mail action aborted: caught by the filter setting.",
                           ""},
    [R_ERR_FILTER_VIRUS] = {"554 5.7.1 Requested mail action aborted: virus %s found.", "s"},
    [R_ERR_FILTER_TEMP] =
        {"451 4.7.1 Requested action aborted: content check failed, try again later", ""},
    [R_ERR_NOMEM] = {"451 4.3.0 Error: insufficient system resources, try again later", ""},
    [R_CLOSE_LIMIT] = {"421 4.7.0 %s exceeds an accepting limit, try again later", "s"},
    [R_CLOSE_TIMEOUT] = {"421 4.4.2 %s Error: timeout exceeded, closing connection", "s"},
    [R_CLOSE_SHUTDOWN] = {"421 4.3.2 %s Service shutting down, closing connection", "s"},
    [R_CLOSE_ERRORS] = {"421 4.7.0 %s Error: too many errors, closing connection", "s"},
    [R_CLOSE_JUNK] =
        {"421 4.7.0 %s Error: too many NOOP, RSET, VRFY or HELP commands, closing connection", "s"},
    [R_CLOSE_PER_IP] =
        {"421 4.7.0 %s Error: too many connections from your address, try again later", "s"},
    [R_CLOSE_RATE] =
        {"421 4.7.0 %s Error: too many connections per minute from your address, try again later",
         "s"},
    [R_CLOSE_AUTH] = {"421 4.7.0 %s Error: too many authentication failures, closing connection",
                      "s"},
    [R_TLS_GO] = {"220 2.0.0 Ready to start TLS", ""},
    [R_ERR_TLS_ACTIVE] = {"554 5.5.1 Error: TLS already active", ""},
    [R_ERR_NOT_IMPL] = {"502 5.5.1 Error: command not implemented", ""},
    [R_AUTH_CHALLENGE] = {"334 %s", "s"},
    [R_AUTH_OK] = {"235 2.7.0 Authentication successful.", ""},
    [R_ERR_AUTH_FAILED] = {"535 5.7.8 Authentication credentials invalid", ""},
    [R_ERR_AUTH_NEEDS_TLS] =
        {"538 5.7.11 Encryption required for requested authentication mechanism", ""},
    [R_ERR_AUTH_REQUIRED] = {"530 5.7.0 Authentication required", ""},
    [R_ERR_AUTH_ALREADY] = {"503 5.5.1 Error: already authenticated", ""},
    [R_ERR_AUTH_MECH] = {"504 5.5.4 Unrecognized authentication type", ""},
    [R_ERR_AUTH_ABORTED] = {"501 5.7.0 Authentication aborted", ""},
    [R_ERR_AUTH_DECODE] = {"501 5.5.2 Cannot decode response", ""},
    [R_ERR_AUTH_BUSY] = {"454 4.7.0 Temporary authentication failure, try again later", ""},
    [R_ERR_BARE_LF] = {"500 5.5.2 Bare LF in command line, use CRLF", ""},
    [R_CLOSE_HARVEST] =
        {"421 4.7.0 %s Error: too many unknown recipients from your address, try again later", "s"},
    [R_CLOSE_DNSBL] = {"554 5.7.1 Service unavailable; client [%s] blocked using %s", "ss"},
    [R_ERR_MILTER_REJECT] = {"550 5.7.1 Command rejected", ""},
    [R_ERR_MILTER_TEMP] = {"451 4.7.1 Service unavailable - try again later", ""},
    [R_FILTER_TEXT] = {"%s", "s"},
    [R_C_TOO_BIG] = {"552 5.3.4 Message size %llu exceeds the next hop's limit of %llu", "uu"},
    [R_C_NO_8BITMIME] = {"554 5.6.3 The message needs 8BITMIME and the next hop does not offer it",
                         ""},
    [R_C_NO_SMTPUTF8] = {"553 5.6.7 The message needs SMTPUTF8 and the next hop does not offer it",
                         ""},
    [R_C_NO_STARTTLS] = {"451 4.7.4 TLS is required but the next hop does not offer STARTTLS", ""},
    [R_C_STARTTLS_REFUSED] = {"451 4.7.4 TLS is required but the next hop refused STARTTLS: %s",
                              "s"},
    [R_C_TLS_FAILED] = {"451 4.7.0 TLS handshake with the next hop failed", ""},
    [R_C_PROTOCOL] = {"451 4.5.0 Protocol error from the next hop: %s", "s"},
    [R_C_CONN_LOST] = {"451 4.4.2 Connection to the next hop failed: %s", "s"},
    [R_C_ABANDONED] = {"451 4.3.0 Delivery attempt abandoned before the next hop answered", ""},
    [R_ERR_QUEUE_FULL] = {"452 4.3.1 Insufficient system storage, try again later", ""},
    [R_CLOSE_PREGREET] = {"554 5.5.0 %s Error: talked before the greeting, closing connection",
                          "s"},
};

/* reply_takes - see reply.h. */
bool reply_takes(enum reply_id id, const char *kinds)
{
    return (unsigned)id < R_COUNT && reply_table[id].args &&
           strcmp(reply_table[id].args, kinds) == 0;
}
