/*-------------------------------------------------------------------------
 *
 * credentials.h
 *		The replication role's password (rk_credentials, rendered into every
 *		node's password file) and the node role's secret (a file of its own
 *		that no base backup carries).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_CREDENTIALS_H
#define RK_CREDENTIALS_H

#include "core/kit.h"

extern bool rk_credentials_table_ready(void);
extern bool rk_credentials_sync_passfile(void);
extern bool rk_extension_at_least(const char *version);
extern bool rk_credentials_current(char **role, char **password);
extern bool rk_credentials_take(const char *role, const char *password);
extern void rk_credentials_store(const char *role, const char *password);
extern char *rk_credentials_new_secret(void);
extern bool rk_passfile_has_role(const char *role);
extern char *rk_node_secret(void);
extern void rk_node_secret_write(const char *secret);
extern void rk_node_secret_narrow_mode(void);
extern bool rk_node_secret_valid(const char *secret);
extern char *rk_peer_password(const char *user);
extern const char *rk_peer_user(const char *repl_role);
extern bool rk_is_node_caller(void);
extern const char *rk_system_identifier(void);
extern void rk_require_same_cluster(const char *funcname);

#endif							/* RK_CREDENTIALS_H */
