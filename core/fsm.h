/*-------------------------------------------------------------------------
 *
 * fsm.h
 *		The failover state machine as data: the worker's states, the events
 *		it derives each round, the actions, and the table of transitions
 *		between them.  The table and the rule that turns what a round saw
 *		into an event live here, in the shared layer, so that the worker
 *		runs them (worker/fsm.c supplies the actions) and the extension
 *		shows them (rk_transitions(), rk_derivable_events()).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_CORE_FSM_H
#define RK_CORE_FSM_H

#include "core/kit.h"

typedef enum RkState
{
	RK_STATE_IDLE,				/* not (yet) in the registry, or just started */
	RK_STATE_PRIMARY,			/* primary, holding its lease */
	RK_STATE_FENCED,			/* primary without lease, or deposed: no commits */
	RK_STATE_FOLLOWING,			/* standby, the primary in sight */
	RK_STATE_SUSPECTING,		/* standby, primary silent for less than failover_timeout */
	RK_STATE_PRIMARY_LOST,		/* standby, primary silent for failover_timeout or more */
	RK_STATE_PROMOTING,			/* won an election, pg_promote() under way */
	RK_STATE_REJOINING,			/* old primary on its way back as a standby */
	RK_NUM_STATES
} RkState;

typedef enum RkEvent
{
	RK_EV_NONE,					/* no event: nothing to hand to the table */
	/* Seen without asking anyone. */
	RK_EV_NOT_REGISTERED,		/* this node is not in the registry */
	RK_EV_IS_PRIMARY,			/* out of recovery in a term it won, in a state that is not a primary's */
	RK_EV_NOT_ELECTED,			/* out of recovery without having won the current term */
	RK_EV_IS_STANDBY,			/* in recovery, in a state that is not a standby's */
	RK_EV_REJOIN_PENDING,		/* an old primary, now in recovery: does it follow yet? */
	RK_EV_MANUAL_FAILOVER,		/* an operator asked for a failover to this node */
	/* A primary's round of probes. */
	RK_EV_MAJORITY_OK,			/* a majority answered as this primary's standbys */
	RK_EV_LEASE_RUNNING,		/* no majority this round, but the lease still runs */
	RK_EV_MAJORITY_LOST,		/* no majority and the lease ran out */
	RK_EV_DEPOSED,				/* another node is the primary in a newer term */
	/* A standby's round of probes. */
	RK_EV_PRIMARY_SEEN,			/* contact with the primary this round */
	RK_EV_PRIMARY_SILENT,		/* none, for less than failover_timeout */
	RK_EV_PRIMARY_DEAD,			/* none, for failover_timeout or more */
	RK_EV_NEW_PRIMARY,			/* another node is the primary now; follow it */
	RK_EV_DIVERGED,				/* cannot follow the primary's newer timeline */
	/* Only ever returned by an action. */
	RK_EV_ELECTION_WON,			/* this node has the votes: promote */
	RK_EV_TAKE_OVER,			/* promoted, but the registry does not say so yet */
	RK_NUM_EVENTS
} RkEvent;

typedef enum RkAction
{
	RK_ACT_NONE,
	RK_ACT_START_PRIMARY,
	RK_ACT_FENCE_UNELECTED,
	RK_ACT_RENEW_LEASE,
	RK_ACT_FENCE,
	RK_ACT_UNFENCE,
	RK_ACT_SUSPECT,
	RK_ACT_ELECT,
	RK_ACT_MANUAL_FAILOVER,
	RK_ACT_REFUSE_MANUAL,
	RK_ACT_PROMOTE,
	RK_ACT_TAKE_OVER,
	RK_ACT_FOLLOW,
	RK_ACT_REJOIN,
	RK_ACT_CHECK_REJOIN,
	RK_ACT_REJOIN_DIVERGED,
	RK_NUM_ACTIONS
} RkAction;

#define RK_EVENT_BIT(e)		((uint32) 1 << (e))

/*
 * One row: in `state`, on `event`, run `action`, go to `next`; `follow_ups`
 * are the events the action may return, dispatched at once in `next`;
 * `why` is what the log says when the state changes.  A row whose action
 * is NONE and whose next state is its own state is an explicit "ignore".
 */
typedef struct RkTransition
{
	RkState		state;
	RkEvent		event;
	RkState		next;
	RkAction	action;
	uint32		follow_ups;
	const char *why;
} RkTransition;

/*
 * What a round saw, in the terms the event is derived from.  probe_event
 * is NONE until the worker has probed the other nodes; then it is one of
 * rk_probe_events(in_recovery).
 */
typedef struct RkObservation
{
	bool		registered;
	bool		in_recovery;
	bool		elected;		/* this node won (or founded) its current term */
	bool		rejoin_pending;
	bool		manual_request;
	RkEvent		probe_event;
} RkObservation;

extern const char *rk_state_name(RkState s);
extern const char *rk_event_name(RkEvent e);
extern const char *rk_action_name(RkAction a);
extern const RkTransition *rk_transition_table(int *n);
extern const RkTransition *rk_transition_for(RkState state, RkEvent event);
extern bool rk_transition_is_ignore(const RkTransition *t);
extern RkEvent rk_derive_event(RkState state, const RkObservation *obs);
extern bool rk_event_needs_probe(RkEvent e);
extern const RkEvent *rk_probe_events(bool in_recovery, int *n);

#endif							/* RK_CORE_FSM_H */
