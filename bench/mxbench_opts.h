/* mxbench_opts.h - the command line of mxbench: the usage text and the
 * option parser (exits 2 with the reason on bad usage). Main thread. */
#ifndef MXBENCH_OPTS_H
#define MXBENCH_OPTS_H

#include "mxbench.h"

#define MXB_EXIT_ERRORS 1
#define MXB_EXIT_USAGE 2

/* mxb_usage_fail - print why and the usage on stderr, exit 2. */
_Noreturn void mxb_usage_fail(const char *why, const char *arg);

/* mxb_opts_parse - fill o from argv (o holds the defaults) or exit 2. */
void mxb_opts_parse(int argc, char **argv, struct mxb_opts *o);

/* mxb_opts_plan - the parts of the plan the options alone decide: the
 * --mix weights and the open-loop phases (--rate or --ramp, cut at
 * --duration). Exits 2 on a bad --mix or --ramp. */
void mxb_opts_plan(const struct mxb_opts *o, struct mxb_plan *p);

#endif
