/* mxbench_corpus.h - the messages and envelopes mxbench sends: a --corpus
 * folder of .eml files (each encoded once for DATA), optionally grouped in
 * size classes picked by weight (--corpus-mix), and address lists read
 * from --senders-file / --rcpts-file. Loaded on the main thread before the
 * run, read-only afterwards; each thread has its own struct mxb_pick. */
#ifndef MXBENCH_CORPUS_H
#define MXBENCH_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mxbench_sched.h"

/* One message ready for DATA. */
struct mxb_msg {
    char *wire;  /* dot-stuffed, CRLF, ends with the end of data */
    size_t len;  /* octets of wire */
    size_t size; /* octets as stored (the file, CRLF-normalised) */
    char *name;  /* file name, or "generated" */
};

/* A size class of --corpus-mix: files up to max octets (above the class
 * before), picked with weight. */
struct mxb_class {
    uint64_t max;
    unsigned weight;
    size_t *idx; /* the messages in it */
    size_t n;
};

struct mxb_corpus {
    struct mxb_msg *m;
    size_t n;
    struct mxb_class cls[MXB_WEIGHTS_MAX];
    unsigned ncls; /* 0: plain round robin over every message */
};

/* A thread's position in the corpus. */
struct mxb_pick {
    struct mxb_wrr wrr; /* over the classes */
    uint64_t rr[MXB_WEIGHTS_MAX];
    uint64_t all;
};

/* mxb_corpus_load - every regular file named *.eml in dir, by name. False
 * with a reason in err (no such folder, no .eml file, unreadable). */
bool mxb_corpus_load(struct mxb_corpus *c, const char *dir, char *err, size_t errlen);

/* mxb_corpus_one - a corpus of the one message wire[0..len) (the generated
 * --size message, already encoded; the corpus takes it over). */
bool mxb_corpus_one(struct mxb_corpus *c, char *wire, size_t len, size_t size);

/* mxb_corpus_classes - group the messages by the --corpus-mix entries
 * "SIZE:WEIGHT" (SIZE as mxb_size_parse()); each message goes into the
 * smallest class whose SIZE it does not exceed. False with err when a SIZE
 * is bad, a class with weight has no message, or a message is larger than
 * the largest class. */
bool mxb_corpus_classes(struct mxb_corpus *c, const struct mxb_weight *w, size_t n, char *err,
                        size_t errlen);

/* mxb_pick_init - thread k's position (threads start apart). */
void mxb_pick_init(struct mxb_pick *pk, const struct mxb_corpus *c, unsigned k);

/* mxb_corpus_next - the next message for this thread: round robin, or a
 * class by weight and round robin inside it. */
const struct mxb_msg *mxb_corpus_next(const struct mxb_corpus *c, struct mxb_pick *pk);

/* mxb_corpus_free - release the messages and classes. */
void mxb_corpus_free(struct mxb_corpus *c);

/* mxb_list_load - the addresses in path, one a line (blank lines and lines
 * starting with '#' skipped, surrounding white space trimmed) as a
 * malloc'ed array of malloc'ed strings, their count in *n. NULL with err
 * when unreadable or empty. */
char **mxb_list_load(const char *path, size_t *n, char *err, size_t errlen);

/* mxb_list_free - release what mxb_list_load returned. */
void mxb_list_free(char **list, size_t n);

#endif
