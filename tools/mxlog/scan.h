/* scan.h - fast scanning of a mapped day file: ASCII case-insensitive
 * substring search (SSE2: first and last needle byte compared 16
 * positions at a time, candidates verified) and line boundaries. Pure
 * functions over bytes; any thread. */
#ifndef MXLOG_SCAN_H
#define MXLOG_SCAN_H

#include <stddef.h>

/* mxl_find_ci - offset of the first case-insensitive occurrence of
 * needle[0..m) in hay[0..n), or n when none (m >= 1). */
size_t mxl_find_ci(const char *hay, size_t n, const char *needle, size_t m);
/* mxl_line_start - offset of the start of the line holding offset i. */
size_t mxl_line_start(const char *p, size_t i);
/* mxl_line_end - offset of the '\n' ending the line at i (or n). */
size_t mxl_line_end(const char *p, size_t n, size_t i);

#endif
