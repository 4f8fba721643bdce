/*-------------------------------------------------------------------------
 *
 * registry.h
 *		The extension's tables (rk_nodes, rk_cluster, rk_events) through
 *		SPI, and the rules for the names and addresses stored in them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_REGISTRY_H
#define RK_REGISTRY_H

#include "core/kit.h"

extern void rk_validate_node_name(const char *name);
extern bool rk_host_is_address(const char *host);
extern void rk_validate_host(const char *host);
extern void rk_validate_port(bool isnull, int32 port);
extern void rk_validate_role_name(const char *role);
extern const char *rk_schema(void);
extern const char *rk_table(const char *relname);
extern char *rk_query_value(const char *sql, int nargs, Oid *argtypes, Datum *values);
extern bool rk_registry_has_primary(char **primary_name);
extern bool rk_registry_has_other_nodes(const char *self);
extern char *rk_registry_replication_role(void);
extern int	rk_registry_sync_standby_count(void);
extern void rk_registry_event(const char *kind, const char *node, const char *detail);
extern char *rk_sync_names_for(const char *primary);
extern char *rk_apply_sync_names(void);
extern char *rk_apply_sync_names_for(const char *primary);

#endif							/* RK_REGISTRY_H */
