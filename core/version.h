/*
 * version.h - which build this is: its release and the commit it came from.
 *
 * Every binary answers --version from here, and larkd's /metrics shows the
 * same two facts as lark_build_info, so an operator can tell which build
 * answers on a host. The release is the VERSION file of the source tree
 * (also the Debian package's version); the commit is git's short hash with
 * "-dirty" for uncommitted changes, or "unknown" when the tree was not a git
 * checkout (a tarball). Both are fixed by the Makefile when version.c is
 * compiled, never read at run time. Constant strings; any thread.
 */
#ifndef LARK_VERSION_H
#define LARK_VERSION_H

#include <stdio.h>

/* "0.1.0" */
const char *version_release(void);

/* "2230eb8c1f3a", "2230eb8c1f3a-dirty" or "unknown" */
const char *version_commit(void);

/* Print "<prog> <release> (commit <commit>)" and a newline to out. */
void version_print(FILE *out, const char *prog);

#endif
