/*-------------------------------------------------------------------------
 *
 * conninfo.h
 *		Connection strings and the commands that carry them, built in one
 *		place with one quoting rule.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_CONNINFO_H
#define RK_CONNINFO_H

#include "lib/stringinfo.h"
#include "libpq-fe.h"

#include "core/kit.h"

extern void rk_conninfo_append(StringInfo buf, const char *key, const char *value);
extern bool rk_conninfo_target(const char *conninfo, char **host, int *port);
extern char *rk_conf_quote(const char *value);
extern char *rk_shell_quote(const char *s);
extern bool rk_tls_configured(bool node_role);
extern void rk_conninfo_append_tls(StringInfo buf, bool node_role);
extern void rk_conninfo_append_tls_but(StringInfo buf, bool node_role, PQconninfoOption *kept);
extern bool rk_tls_explicit(void);
extern bool rk_conninfo_is_tls_keyword(const char *keyword);
extern char *rk_clone_command(const char *datadir, const char *name, const char *host, int port,
							  const char *role);

#endif							/* RK_CONNINFO_H */
