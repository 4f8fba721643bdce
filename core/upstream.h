/*-------------------------------------------------------------------------
 *
 * upstream.h
 *		Whom this standby streams from: primary_conninfo, the re-point, and
 *		the end of every other stream before a vote is granted.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_UPSTREAM_H
#define RK_UPSTREAM_H

#include "core/kit.h"

extern char *rk_upstream_conninfo(const char *host, int port, const char *self, const char *role);
extern void rk_point_upstream(const char *host, int port, const char *self, const char *role);
extern void rk_point_catch_up(const char *host, int port, const char *self, const char *role);
extern bool rk_upstream_drop_password(const char *self, const char *role);
extern bool rk_receiver_targets(const char *host, int port, pid_t *pid);
extern bool rk_end_other_streams(const char *host, int port, int timeout_ms);

#endif							/* RK_UPSTREAM_H */
