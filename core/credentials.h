/*-------------------------------------------------------------------------
 *
 * credentials.h
 *		The replication role's and the node role's passwords, kept in
 *		rk_credentials and rendered into every node's password file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_CREDENTIALS_H
#define RK_CREDENTIALS_H

#include "core/kit.h"

extern bool rk_credentials_sync_passfile(void);
extern void rk_credentials_store(const char *role, const char *password);
extern char *rk_credentials_password(const char *role);
extern char *rk_credentials_new_secret(void);
extern bool rk_passfile_has_role(const char *role);
extern char *rk_passfile_password(const char *role);
extern const char *rk_peer_user(const char *repl_role);
extern bool rk_is_node_caller(void);
extern const char *rk_system_identifier(void);
extern void rk_require_same_cluster(const char *funcname);

#endif							/* RK_CREDENTIALS_H */
