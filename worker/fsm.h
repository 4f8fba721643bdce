/*-------------------------------------------------------------------------
 *
 * fsm.h
 *		The worker's states, the events it derives from what it sees each
 *		round, and the per-round view those events are derived from.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_FSM_H
#define RK_FSM_H

#include "replication_kit.h"

typedef enum RkState
{
	RK_STATE_IDLE,				/* not (yet) in the registry */
	RK_STATE_PRIMARY,			/* primary, holding its lease */
	RK_STATE_FENCED,			/* primary without lease, or deposed: no commits */
	RK_STATE_FOLLOWING,			/* standby, the primary in sight */
	RK_STATE_SUSPECTING,		/* standby, primary silent for less than failover_timeout */
	RK_STATE_PRIMARY_LOST,		/* standby, primary silent for failover_timeout or more */
	RK_STATE_PROMOTING,			/* won an election, pg_promote() under way */
	RK_STATE_REJOINING,			/* fenced old primary on its way back as a standby */
	RK_NUM_STATES
} RkState;

typedef enum RkEvent
{
	RK_EV_NOT_REGISTERED,
	RK_EV_IS_PRIMARY,			/* this node is out of recovery */
	RK_EV_IS_STANDBY,			/* this node is in recovery */
	RK_EV_MAJORITY_OK,			/* primary: a majority answered this round */
	RK_EV_MAJORITY_LOST,		/* primary: the lease ran out */
	RK_EV_DEPOSED,				/* primary: another node is primary in a newer term */
	RK_EV_PRIMARY_SEEN,			/* standby: contact with the primary this round */
	RK_EV_PRIMARY_SILENT,		/* standby: none, for less than failover_timeout */
	RK_EV_PRIMARY_DEAD,			/* standby: none, for failover_timeout or more */
	RK_EV_NEW_PRIMARY,			/* standby: another node is the primary now; follow it */
	RK_EV_ELECTION_WON,			/* this node has the votes: promote */
	RK_EV_MANUAL_FAILOVER,		/* an operator asked for a failover to this node */
	RK_EV_REJOIN_PENDING,		/* an old primary, now in recovery: does it follow yet? */
	RK_EV_DIVERGED,				/* standby: cannot follow the primary's newer timeline */
	RK_NUM_EVENTS
} RkEvent;

/* What one round saw, and what follows from it. */
typedef struct RkView
{
	TimestampTz now;			/* when the round started */
	bool		in_recovery;
	char		self[NAMEDATALEN];
	int			self_idx;		/* index in peers, -1 if not registered */
	int			npeers;
	RkPeer		peers[RK_MAX_NODES];
	int			members;		/* nodes that count for a majority */
	int			majority;
	char		method[8];		/* synchronous policy */
	int			num_sync;
	char		repl_role[NAMEDATALEN];
	RkNodeState st;				/* this node's durable state at round start */
	TimeLineID	tli;
	XLogRecPtr	lsn;

	/* derived */
	int			primary_idx;	/* the node believed to be the primary, or -1 */
	int			upstream_idx;	/* the node primary_conninfo points at, or -1 */
	bool		contact;		/* contact with the primary this round */
	long		silence_ms;		/* since the last contact */
	int			support;		/* primary: nodes (itself included) that answered as its standbys */
	bool		deposed;
	char		why[RK_REASON_LEN]; /* detail for the event */
} RkView;

typedef RkEvent (*RkAction) (RkView *view);

extern const char *rk_state_name(RkState s);
extern const char *rk_event_name(RkEvent e);
extern RkState rk_fsm_dispatch(RkState state, RkEvent event, RkView *view);

/* actions (election.c, follow.c, worker.c) */
extern RkEvent rk_act_none(RkView *v);
extern RkEvent rk_act_start_primary(RkView *v);
extern RkEvent rk_act_renew_lease(RkView *v);
extern RkEvent rk_act_fence(RkView *v);
extern RkEvent rk_act_unfence(RkView *v);
extern RkEvent rk_act_suspect(RkView *v);
extern RkEvent rk_act_elect(RkView *v);
extern RkEvent rk_act_promote(RkView *v);
extern RkEvent rk_act_take_over(RkView *v);
extern RkEvent rk_act_follow(RkView *v);
extern RkEvent rk_act_rejoin(RkView *v);
extern RkEvent rk_act_check_rejoin(RkView *v);
extern RkEvent rk_act_rejoin_diverged(RkView *v);

/* the event journal: server log now, rk_events once this node is primary */
extern void rk_journal(RkView *v, const char *kind, const char *node, const char *fmt,...) pg_attribute_printf(4, 5);
extern void rk_journal_flush(void);
extern void rk_set_readiness(const char *fmt,...) pg_attribute_printf(1, 2);

/* election.c */
extern void rk_handle_manual_request(RkView *v, RkState *state);
extern int	rk_best_candidate(RkView *v, char *reason, size_t reasonlen);
extern bool rk_quorum_ready(RkView *v, char *reason, size_t reasonlen);
extern bool rk_promote_now(RkView *v, uint64 term, const char *how);
extern TimestampTz rk_election_lease_start(uint64 term);
extern bool rk_election_forced(uint64 term);

/* follow.c */
extern bool rk_repoint_to(RkView *v, int primary_idx);
extern int	rk_upstream_index(RkView *v);
extern void rk_create_peer_slots(RkView *v);
extern void rk_grant_lease(RkView *v, TimestampTz from);
extern void rk_extend_lease(TimestampTz from);

#endif							/* RK_FSM_H */
