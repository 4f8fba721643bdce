/*-------------------------------------------------------------------------
 *
 * fsm.h
 *		The worker's side of the state machine: the per-round view that
 *		events are derived from and actions work on, the worker's own
 *		memory across rounds (one context, no statics), and the actions
 *		the table in core/fsm.c names.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_WORKER_FSM_H
#define RK_WORKER_FSM_H

#include "core/config.h"
#include "core/fsm.h"
#include "core/local.h"
#include "core/registry.h"
#include "core/settings.h"
#include "core/shmem.h"

/* Events waiting to be written to rk_events once this node is primary. */
#define RK_JOURNAL_SIZE 64
#define RK_JOURNAL_DETAIL_LEN 512

typedef struct RkJournalEntry
{
	TimestampTz at;
	uint64		term;
	char		kind[32];
	char		node[NAMEDATALEN];
	char		detail[RK_JOURNAL_DETAIL_LEN];
} RkJournalEntry;

/*
 * What the worker remembers from one round to the next, besides its
 * state.  Only this process's memory: a restarted worker starts with a
 * zeroed one and trusts nothing of it (see worker.c).
 */
typedef struct RkWorkerContext
{
	/* The election this node won last, for the promotion and take-over. */
	uint64		won_term;
	int64		won_at_ms;		/* when the votes were given (monotonic): the lease starts there */
	bool		won_forced;		/* promoted without a majority */
	bool		won_loss;		/* forced past the majority or the synchronous quorum */
	char		won_how[RK_REASON_LEN];

	/* An operator's request being answered (request_seq in shared memory). */
	bool		manual_pending;
	uint32		manual_seq;
	StringInfoData manual_result;

	/* Journal entries not yet in rk_events. */
	int			journal_len;
	RkJournalEntry journal[RK_JOURNAL_SIZE];

	/* Rejoin and divergence bookkeeping (rejoin.c, worker.c). */
	int64		follow_since;	/* an old primary began waiting to stream (monotonic ms) */
	bool		helper_started; /* rk_rejoin runs: the server is going down */
	int64		caller_waiting_since;	/* a switchover caller here, since (monotonic ms) */
	bool		diverged_reported;
	int64		diverged_since; /* a standby stuck behind a newer timeline, since (monotonic ms) */
	int64		retry_seen_ms;	/* when this worker first saw the last failed rewind attempt */
	TimeLineID	standby_tli;	/* the timeline this node was last seen on in recovery, 0: never */
	bool		promoted_here;	/* this worker called pg_promote() since the node was last in recovery */
	int64		rejoin_silent_since;	/* the primary a rejoin waits for stopped answering (monotonic ms) */

	/*
	 * Since when each node (by registry index) has answered without a break
	 * as the winner being promoted (rk_quorum_ready), monotonic ms; 0: not.
	 */
	char		promoting_node[RK_MAX_NODES][NAMEDATALEN];
	int64		promoting_since[RK_MAX_NODES];

	/* A standby whose WAL receiver cannot log in (fetch_credentials). */
	int64		not_streaming_since;	/* monotonic ms, 0 while it streams */
	int64		credentials_asked_ms;	/* last time it asked its upstream */

	/* The maintenance pause (pause.c). */
	uint64		pause_logged;	/* the pause last logged as holding here, 0: none */
	int64		resume_sent_ms; /* last time a local rk_resume() was handed on */
	char		resume_node[RK_MAX_NODES][NAMEDATALEN];
	uint64		resume_acked[RK_MAX_NODES]; /* the end of a pause each node has taken */
} RkWorkerContext;

/* What one round saw, and what follows from it. */
typedef struct RkView
{
	RkWorkerContext *ctx;
	TimestampTz now;			/* when the round started, for logs and rk_status */
	int64		mono;			/* the same on the monotonic clock, for every duration */
	bool		in_recovery;
	char		self[NAMEDATALEN];
	int			self_idx;		/* index in peers, -1 if not registered */
	int			npeers;
	RkPeer		peers[RK_MAX_NODES];
	int			members;		/* nodes that count for a majority */
	int			majority;
	char		method[8];		/* synchronous policy */
	int			num_sync;
	char		repl_role[NAMEDATALEN];	/* streams WAL */
	char		peer_user[NAMEDATALEN];	/* calls the other nodes: the node role */
	char		schema[NAMEDATALEN];	/* the kit's schema */
	char		schema_q[2 * NAMEDATALEN + 3];	/* the same, quoted: remote calls name it */
	uint64		pause_id;		/* the registry's pause (rk_pause), 0 if none ever */
	bool		pause_set;		/* the registry says paused */
	bool		paused;			/* ... and this node has not resumed it (rk_resume) */
	char		paused_since[64];
	char		pause_reason[RK_REASON_LEN];
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

extern RkState rk_fsm_dispatch(RkState state, RkEvent event, RkView *view);

/*
 * The worker's transactions wrap catalog work only; network waits happen
 * outside them.  rk_xact_begin() starts one unless one is open already and
 * says whether it did; rk_xact_end() commits the one it started.
 */
extern bool rk_xact_begin(void);
extern void rk_xact_end(bool started);

/* actions: each returns RK_EV_NONE or a follow-up event its row declares */
extern RkEvent rk_act_start_primary(RkView *v);
extern RkEvent rk_act_fence_unelected(RkView *v);
extern RkEvent rk_act_renew_lease(RkView *v);
extern RkEvent rk_act_fence(RkView *v);
extern RkEvent rk_act_unfence(RkView *v);
extern RkEvent rk_act_suspect(RkView *v);
extern RkEvent rk_act_elect(RkView *v);
extern RkEvent rk_act_manual_failover(RkView *v);
extern RkEvent rk_act_refuse_manual(RkView *v);
extern RkEvent rk_act_promote(RkView *v);
extern RkEvent rk_act_take_over(RkView *v);
extern RkEvent rk_act_follow(RkView *v);
extern RkEvent rk_act_rejoin(RkView *v);
extern RkEvent rk_act_check_rejoin(RkView *v);
extern RkEvent rk_act_rejoin_diverged(RkView *v);

/* journal.c: the event journal, server log now and rk_events once primary */
extern void rk_journal(RkView *v, const char *kind, const char *node, const char *fmt,...) pg_attribute_printf(4, 5);
extern void rk_journal_flush(RkWorkerContext *ctx);
extern void rk_set_readiness(const char *fmt,...) pg_attribute_printf(1, 2);

/* hooks.c */
extern pid_t rk_fork_detached(int out_fd);
extern void rk_hook_event(RkView *v, const char *event, const char *role, const char *primary);
extern void rk_hooks_poll(RkView *v);
extern void rk_hooks_note_primary(RkView *v);

/* election.c */
extern bool rk_manual_request_pending(RkWorkerContext *ctx);
extern void rk_manual_answer(RkWorkerContext *ctx, bool ok, const char *result);
extern int	rk_best_candidate(RkView *v, char *reason, size_t reasonlen);
extern bool rk_quorum_ready(RkView *v, char *reason, size_t reasonlen);
extern int64 rk_election_lease_start(RkWorkerContext *ctx, uint64 term);

/* pause.c */
extern void rk_pause_note(RkView *v);
extern void rk_pause_upkeep(RkView *v, RkState state);

/* follow.c */
extern bool rk_on_own_unelected_timeline(RkView *v);
extern bool rk_repoint_to(RkView *v, int primary_idx);
extern int	rk_upstream_index(RkView *v);
extern void rk_create_peer_slots(RkView *v);
extern void rk_drop_idle_peer_slots(RkView *v);
extern void rk_grant_lease(RkView *v, int64 from_ms);
extern void rk_extend_lease(int64 from_ms);
extern void rk_cap_lease(int64 from_ms);

#endif							/* RK_WORKER_FSM_H */
