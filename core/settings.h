/*-------------------------------------------------------------------------
 *
 * settings.h
 *		The replication_kit.* settings (GUCs) and what follows from them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_SETTINGS_H
#define RK_SETTINGS_H

#include "core/kit.h"

extern char *rk_node_name_setting;
extern char *rk_database;
extern int	rk_probe_interval_ms;
extern int	rk_probe_timeout_ms;
extern int	rk_failover_timeout_ms;
extern int	rk_fence_timeout_ms;
extern bool rk_auto_failover;
extern char *rk_http_address;
extern bool rk_auto_rejoin;
extern bool rk_remove_without_majority;
extern char *rk_simulate_partition;
extern char *rk_event_command;
extern int	rk_event_timeout_ms;
extern char *rk_peer_system_identifier;
extern char *rk_sslmode;
extern char *rk_sslrootcert;
extern char *rk_channel_binding;
extern int	rk_reserved_connections;
extern bool rk_tls_required(void);
extern const char *rk_tls_sslmode(void);
extern const char *rk_tls_channel_binding(bool node_role);

extern void rk_define_settings(void);
extern int	rk_effective_fence_ms(void);
extern int	rk_vote_wait_ms(bool automatic);

#endif							/* RK_SETTINGS_H */
