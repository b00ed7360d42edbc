/*
 * version.c - the release and commit the Makefile passes in.
 */
#include "core/version.h"

/* Set by the Makefile for this file only (so a new commit recompiles one
 * file); the fallbacks serve tools that compile it alone, such as lint. */
#ifndef LARK_VERSION
#define LARK_VERSION "unknown"
#endif
#ifndef LARK_COMMIT
#define LARK_COMMIT "unknown"
#endif

const char *version_release(void)
{
    return LARK_VERSION;
}

const char *version_commit(void)
{
    return LARK_COMMIT;
}

void version_print(FILE *out, const char *prog)
{
    fprintf(out, "%s %s (commit %s)\n", prog, LARK_VERSION, LARK_COMMIT);
}
