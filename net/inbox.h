/* inbox.h - a lock-free many-producer, one-consumer handoff of intrusive
 * nodes with an optional eventfd wake-up: producers push from any thread,
 * the owner takes everything at once, oldest first (authpool results,
 * qflush reports). */
#ifndef MXRING_INBOX_H
#define MXRING_INBOX_H

#include <stddef.h>

/* A link embedded in the element handed over; INBOX_ENTRY gets the element. */
struct inbox_node {
    struct inbox_node *next;
};

#define INBOX_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

struct inbox;

/* inbox_new - an empty inbox; efd (the owner's eventfd, borrowed; -1 for
 * none) is written when a push finds it empty. NULL when out of memory. */
struct inbox *inbox_new(int efd);
/* inbox_free - free the inbox itself (NULL is fine). Nodes still in it are
 * not touched: take them first when they own memory. */
void inbox_free(struct inbox *ib);
/* inbox_push - any thread: hand n to the owner; everything written to n's
 * element before the push is visible to the owner after inbox_take. */
void inbox_push(struct inbox *ib, struct inbox_node *n);
/* inbox_take - owner only: all nodes pushed so far, oldest first, linked
 * by next and ending in NULL (NULL when empty). */
struct inbox_node *inbox_take(struct inbox *ib);

#endif
