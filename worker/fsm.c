/*-------------------------------------------------------------------------
 *
 * fsm.c
 *		The failover state machine, written down as data: one row per
 *		(state, event) pair the worker acts on, with the next state, the
 *		action, and why, in words a person reads in the log afterwards.
 *
 * Each round the worker looks at the cluster (worker.c), derives one event,
 * and hands it here.  An action may itself produce a follow-up event (an
 * election that was won yields ELECTION_WON), which is dispatched in the
 * same round.  A (state, event) pair with no row changes nothing.
 *
 * Every change of state is journaled: logged with the kit's prefix at
 * once, and written to rk_events when this node is (or becomes) primary.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fsm.h"

typedef struct RkTransition
{
	RkState		state;
	RkEvent		event;
	RkState		next;
	RkAction	action;
	const char *why;
} RkTransition;

#define ANY_STATE RK_NUM_STATES

static const RkTransition transitions[] = {
	/* Not in the registry: nothing to watch, nothing to decide. */
	{ANY_STATE, RK_EV_NOT_REGISTERED, RK_STATE_IDLE, rk_act_none,
	"this node is not in the registry"},

	/* Finding out what we are. */
	{RK_STATE_IDLE, RK_EV_IS_PRIMARY, RK_STATE_PRIMARY, rk_act_start_primary,
	"this node is the primary"},
	{RK_STATE_IDLE, RK_EV_IS_STANDBY, RK_STATE_FOLLOWING, rk_act_none,
	"this node is a standby"},

	/* A primary keeps its lease while a majority answers; otherwise it is fenced. */
	{RK_STATE_PRIMARY, RK_EV_MAJORITY_OK, RK_STATE_PRIMARY, rk_act_renew_lease,
	NULL},
	{RK_STATE_PRIMARY, RK_EV_MAJORITY_LOST, RK_STATE_FENCED, rk_act_fence,
	"no majority answered within fence_timeout: commits are refused from now on"},
	{RK_STATE_PRIMARY, RK_EV_DEPOSED, RK_STATE_FENCED, rk_act_fence,
	"another node is the primary in a newer term: commits are refused from now on"},
	{RK_STATE_FENCED, RK_EV_MAJORITY_OK, RK_STATE_PRIMARY, rk_act_unfence,
	"a majority answers again and no newer term exists: commits allowed again"},
	{RK_STATE_FENCED, RK_EV_DEPOSED, RK_STATE_REJOINING, rk_act_rejoin,
	"another node is the primary in a newer term: rejoin as its standby"},
	{RK_STATE_REJOINING, RK_EV_DEPOSED, RK_STATE_REJOINING, rk_act_rejoin,
	NULL},
	{RK_STATE_PRIMARY, RK_EV_IS_STANDBY, RK_STATE_FOLLOWING, rk_act_none,
	"this node is a standby now"},
	{RK_STATE_FENCED, RK_EV_IS_STANDBY, RK_STATE_FOLLOWING, rk_act_none,
	"this node is a standby now"},
	{RK_STATE_REJOINING, RK_EV_IS_STANDBY, RK_STATE_FOLLOWING, rk_act_none,
	"this node rejoined as a standby"},
	{RK_STATE_IDLE, RK_EV_REJOIN_PENDING, RK_STATE_REJOINING, rk_act_check_rejoin,
	"this old primary started as a standby: check that it follows the new primary"},
	{RK_STATE_REJOINING, RK_EV_REJOIN_PENDING, RK_STATE_REJOINING, rk_act_check_rejoin,
	NULL},

	/* A standby watches the primary. */
	{RK_STATE_FOLLOWING, RK_EV_PRIMARY_SILENT, RK_STATE_SUSPECTING, rk_act_suspect,
	"no contact with the primary"},
	{RK_STATE_FOLLOWING, RK_EV_PRIMARY_DEAD, RK_STATE_PRIMARY_LOST, rk_act_elect,
	"no contact with the primary for failover_timeout"},
	{RK_STATE_SUSPECTING, RK_EV_PRIMARY_SEEN, RK_STATE_FOLLOWING, rk_act_none,
	"contact with the primary again"},
	{RK_STATE_SUSPECTING, RK_EV_PRIMARY_DEAD, RK_STATE_PRIMARY_LOST, rk_act_elect,
	"no contact with the primary for failover_timeout"},
	{RK_STATE_PRIMARY_LOST, RK_EV_PRIMARY_DEAD, RK_STATE_PRIMARY_LOST, rk_act_elect,
	NULL},
	{RK_STATE_PRIMARY_LOST, RK_EV_PRIMARY_SEEN, RK_STATE_FOLLOWING, rk_act_none,
	"contact with the primary again; no failover"},
	{RK_STATE_PRIMARY_LOST, RK_EV_PRIMARY_SILENT, RK_STATE_SUSPECTING, rk_act_none,
	NULL},

	/* A standby that received WAL the new primary never had must be rewound. */
	{RK_STATE_FOLLOWING, RK_EV_DIVERGED, RK_STATE_FOLLOWING, rk_act_rejoin_diverged,
	NULL},
	{RK_STATE_SUSPECTING, RK_EV_DIVERGED, RK_STATE_SUSPECTING, rk_act_rejoin_diverged,
	NULL},

	/* Another node is the primary now (a failover elsewhere): follow it. */
	{RK_STATE_FOLLOWING, RK_EV_NEW_PRIMARY, RK_STATE_FOLLOWING, rk_act_follow,
	"another node is the primary: re-point primary_conninfo to it"},
	{RK_STATE_SUSPECTING, RK_EV_NEW_PRIMARY, RK_STATE_FOLLOWING, rk_act_follow,
	"another node is the primary: re-point primary_conninfo to it"},
	{RK_STATE_PRIMARY_LOST, RK_EV_NEW_PRIMARY, RK_STATE_FOLLOWING, rk_act_follow,
	"another node was promoted: re-point primary_conninfo to it"},

	/* Winning an election, by itself or at an operator's request. */
	{RK_STATE_PRIMARY_LOST, RK_EV_ELECTION_WON, RK_STATE_PROMOTING, rk_act_promote,
	"a majority voted for this node: promote it"},
	{RK_STATE_FOLLOWING, RK_EV_ELECTION_WON, RK_STATE_PROMOTING, rk_act_promote,
	"the operator's failover got its votes: promote this node"},
	{RK_STATE_SUSPECTING, RK_EV_ELECTION_WON, RK_STATE_PROMOTING, rk_act_promote,
	"the operator's failover got its votes: promote this node"},
	{RK_STATE_PROMOTING, RK_EV_IS_PRIMARY, RK_STATE_PRIMARY, rk_act_take_over,
	"promoted: take over as the primary of the new term"},
	{RK_STATE_PROMOTING, RK_EV_IS_STANDBY, RK_STATE_PRIMARY_LOST, rk_act_none,
	"promotion did not complete"},

	/* Promoted by someone else (pg_promote by hand): still take over properly. */
	{RK_STATE_FOLLOWING, RK_EV_IS_PRIMARY, RK_STATE_PRIMARY, rk_act_take_over,
	"this node left recovery without an election: take over in a new term"},
	{RK_STATE_SUSPECTING, RK_EV_IS_PRIMARY, RK_STATE_PRIMARY, rk_act_take_over,
	"this node left recovery without an election: take over in a new term"},
	{RK_STATE_PRIMARY_LOST, RK_EV_IS_PRIMARY, RK_STATE_PRIMARY, rk_act_take_over,
	"this node left recovery without an election: take over in a new term"},
};

static const char *const state_names[] = {
	"idle", "primary", "fenced", "following", "suspecting", "primary_lost",
	"promoting", "rejoining"
};

static const char *const event_names[] = {
	"not_registered", "is_primary", "is_standby", "majority_ok", "majority_lost",
	"deposed", "primary_seen", "primary_silent", "primary_dead", "new_primary",
	"election_won", "manual_failover", "rejoin_pending", "diverged"
};

StaticAssertDecl(lengthof(state_names) == RK_NUM_STATES, "state names");
StaticAssertDecl(lengthof(event_names) == RK_NUM_EVENTS, "event names");

const char *
rk_state_name(RkState s)
{
	return s < RK_NUM_STATES ? state_names[s] : "?";
}

const char *
rk_event_name(RkEvent e)
{
	return e < RK_NUM_EVENTS ? event_names[e] : "?";
}

/*
 * Look up (state, event), run the action, journal a change of state, and
 * follow up on an event the action produced.  Returns the new state.
 */
RkState
rk_fsm_dispatch(RkState state, RkEvent event, RkView *view)
{
	for (int depth = 0; depth < 4; depth++)
	{
		const RkTransition *t = NULL;
		RkEvent		follow_up;

		for (int i = 0; i < (int) lengthof(transitions); i++)
		{
			if ((transitions[i].state == state || transitions[i].state == ANY_STATE) &&
				transitions[i].event == event)
			{
				t = &transitions[i];
				break;
			}
		}
		if (t == NULL)
			return state;

		view->why[0] = '\0';
		follow_up = t->action(view);
		if (t->next != state && t->why != NULL)
			rk_journal(view, "transition", NULL, "%s -> %s on %s: %s%s%s",
					   rk_state_name(state), rk_state_name(t->next), rk_event_name(event),
					   t->why, view->why[0] ? "; " : "", view->why);
		state = t->next;
		if (follow_up == RK_NUM_EVENTS)
			return state;
		event = follow_up;
	}
	return state;
}
