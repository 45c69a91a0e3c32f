/* follow.h - `mxlog follow [FILTER]`: a live verdict stream of one host's
 * receivelog. Main thread. */
#ifndef MXLOG_FOLLOW_H
#define MXLOG_FOLLOW_H

#include "walk.h"

/* mxl_follow - runs until killed (or a read error: exit 2). host NULL:
 * gethostname() when that folder exists, else the first host folder. */
int mxl_follow(struct mxl_opts *o, const char *host, const char *filter);

#endif
