/*-------------------------------------------------------------------------
 *
 * local.h
 *		What this node is, as it can tell by itself: its name, how far its
 *		WAL goes, whether WAL still arrives, and whom a test cut it off from.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_LOCAL_H
#define RK_LOCAL_H

#include "access/xlogdefs.h"

/* Can a standby follow a newer timeline, or did its WAL go past the fork? */
typedef enum RkFork
{
	RK_FORK_UNKNOWN,
	RK_FORK_CAN_FOLLOW,
	RK_FORK_DIVERGED
} RkFork;

#include "core/kit.h"

extern char *rk_self_name(void);
extern char *rk_primary_conninfo_appname(void);
extern XLogRecPtr rk_local_lsn(void);
extern XLogRecPtr rk_timeline_fork(TimeLineID tli, TimeLineID *parent);
extern void rk_election_position(TimeLineID *tli, XLogRecPtr *lsn);
extern int64 rk_walreceiver_heard_ms(void);
extern bool rk_walreceiver_hears_primary(int window_ms);
extern bool rk_upstream_answers_fenced_locked(void);
extern bool rk_partitioned_from(const char *node_name);
extern void rk_cut_walsenders(const char *keep, bool only_nodes, int tries);
extern RkFork rk_fork_state(TimeLineID upstream_tli, char *why, size_t whylen);

#endif							/* RK_LOCAL_H */
