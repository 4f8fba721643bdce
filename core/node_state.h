/*-------------------------------------------------------------------------
 *
 * node_state.h
 *		What one node remembers across restarts (PGDATA/replication_kit.state).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_NODE_STATE_H
#define RK_NODE_STATE_H

#include "core/kit.h"

/*
 * What this node remembers across restarts: its name, the highest term it
 * has seen and whom it voted for in it, and the role it last had.  Written
 * with a temporary file and durable_rename, read at startup.
 */
typedef struct RkNodeState
{
	char		node_name[NAMEDATALEN];
	uint64		term;			/* highest term this node has seen */
	char		voted_for[NAMEDATALEN]; /* vote given in voted_term, or "" */
	uint64		voted_term;
	uint64		won_term;		/* the last term this node won (or founded): it may
								 * act as the primary only while term == won_term */
	char		role[16];		/* "primary", "standby" or "" */
	char		primary_name[NAMEDATALEN];	/* the primary of `term`, if known */
	int			members;		/* nodes that count in a majority, as last seen */
	bool		rejoin_pending; /* an old primary started as a standby: check it follows */
	TimeLineID	rejoin_from_tli;	/* the newest timeline it knew of then (0: unknown) */
	uint64		rewound_term;	/* the term of this node's last rewind */
	char		repl_role[NAMEDATALEN]; /* the role standbys stream as */
	char		schema[NAMEDATALEN];	/* the kit's schema, which calls name ("": unknown) */

	/*
	 * A timeline this node started by a promotion nobody voted for (an
	 * operator's pg_promote()), and the point where it forked off its
	 * parent: in the winner rule the node counts at that point, on the
	 * parent (rk_election_position).  0: none.
	 */
	TimeLineID	unelected_tli;
	XLogRecPtr	unelected_fork;

	/*
	 * The registry's pause (rk_pause) this node was told to end while the
	 * primary could not clear it (rk_resume on a standby): a pause_id up to
	 * this one no longer holds here, and this node, once primary, clears it.
	 */
	uint64		resumed_pause;

	/*
	 * The other nodes, as the registry last listed them: the postmaster
	 * asks them, before it accepts a connection, whether a newer term has
	 * another primary (the fence at start).
	 */
	int			npeers;
	char		peer_name[RK_MAX_NODES][NAMEDATALEN];
	char		peer_host[RK_MAX_NODES][RK_HOST_LEN];
	int			peer_port[RK_MAX_NODES];
} RkNodeState;

extern bool rk_state_read(RkNodeState *state);
extern void rk_state_write(const RkNodeState *state);
extern void rk_state_save_locked(const RkNodeState *st);
extern void rk_state_load_locked(void);
extern void rk_state_set_identity(const char *node_name, const char *role);
extern void rk_state_start_term(const char *primary_name);
extern bool rk_state_elected(const RkNodeState *st);
extern bool rk_state_note_resumed(uint64 pause_id);

#endif							/* RK_NODE_STATE_H */
