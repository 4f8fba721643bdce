/*-------------------------------------------------------------------------
 *
 * durable.h
 *		The one way the kit writes a file: a temporary file of its own
 *		(created exclusively, with the mode set explicitly), fsync, then
 *		durable_rename (which fsyncs the file and its directory).  A crash
 *		at any moment leaves either the old file or the new one, never a
 *		mix, and a decision written this way is on disk before it is acted
 *		on.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_DURABLE_H
#define RK_DURABLE_H

#include <sys/types.h>

#include "common/file_perm.h"

#include "core/kit.h"

/* Take the owner and mode of the file being replaced (pg_hba.conf). */
#define RK_MODE_OF_TARGET	((mode_t) -1)

extern char *rk_durable_prepare(const char *path, const char *content, size_t len, mode_t mode);
extern void rk_durable_install(const char *tmp, const char *path);
extern void rk_durable_write(const char *path, const char *content, size_t len, mode_t mode);
extern void rk_durable_remove(const char *path);
extern char *rk_read_whole_file(const char *path, size_t *len);

#endif							/* RK_DURABLE_H */
