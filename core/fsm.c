/*-------------------------------------------------------------------------
 *
 * fsm.c
 *		The failover state machine, written down as data: one row per
 *		(state, event) pair a worker can meet, with the next state, the
 *		action, the events that action may return, and why, in words a
 *		person reads in the log afterwards.  A pair the worker meets and
 *		should do nothing about has an explicit "ignore" row; a pair it can
 *		never meet has no row.  sql/fsm.sql checks both from the outside:
 *		every pair that can occur has exactly one row, and every row can
 *		occur.
 *
 * How an event is derived from a round is here too (rk_derive_event), as
 * a pure function of what the round saw and of the role each state
 * implies, so that the check can enumerate it.
 *
 * A node out of recovery is a primary only in a term it won (or founded):
 * rk_state_elected().  One that left recovery otherwise (pg_promote() by
 * hand, an interrupted rejoin, a restored copy) or that knows of a newer
 * term (it was replaced) gets NOT_ELECTED and is fenced, whatever state
 * its worker was in; it never raises the term by itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "core/fsm.h"

#define FOLLOW(e)	RK_EVENT_BIT(RK_EV_##e)
#define NO_FOLLOW	0

/* Shorthand for the table below. */
#define S(x)		RK_STATE_##x
#define E(x)		RK_EV_##x
#define A(x)		RK_ACT_##x
#define IGNORE(st, ev, why) {S(st), E(ev), S(st), A(NONE), NO_FOLLOW, why}

static const RkTransition transitions[] = {
	/* Not in the registry (any more): nothing to watch, nothing to decide. */
	IGNORE(IDLE, NOT_REGISTERED, "not in the registry"),
	{S(PRIMARY), E(NOT_REGISTERED), S(IDLE), A(NONE), NO_FOLLOW, "this node is not in the registry"},
	{S(FENCED), E(NOT_REGISTERED), S(IDLE), A(NONE), NO_FOLLOW, "this node is not in the registry"},
	{S(FOLLOWING), E(NOT_REGISTERED), S(IDLE), A(NONE), NO_FOLLOW, "this node is not in the registry"},
	{S(SUSPECTING), E(NOT_REGISTERED), S(IDLE), A(NONE), NO_FOLLOW, "this node is not in the registry"},
	{S(PRIMARY_LOST), E(NOT_REGISTERED), S(IDLE), A(NONE), NO_FOLLOW, "this node is not in the registry"},
	{S(PROMOTING), E(NOT_REGISTERED), S(IDLE), A(NONE), NO_FOLLOW, "this node is not in the registry"},
	{S(REJOINING), E(NOT_REGISTERED), S(IDLE), A(NONE), NO_FOLLOW, "this node is not in the registry"},

	/* Finding out what we are. */
	{S(IDLE), E(IS_PRIMARY), S(PRIMARY), A(START_PRIMARY), FOLLOW(TAKE_OVER),
	"this node is the primary"},
	{S(IDLE), E(IS_STANDBY), S(FOLLOWING), A(NONE), NO_FOLLOW,
	"this node is a standby"},
	{S(PRIMARY), E(TAKE_OVER), S(PRIMARY), A(TAKE_OVER), NO_FOLLOW,
	"promoted, but the take-over did not finish: finish it"},

	/* A primary keeps its lease while a majority answers; otherwise it is fenced. */
	{S(PRIMARY), E(MAJORITY_OK), S(PRIMARY), A(RENEW_LEASE), NO_FOLLOW, NULL},
	IGNORE(PRIMARY, LEASE_RUNNING, "no majority this round, but the lease still runs"),
	{S(PRIMARY), E(MAJORITY_LOST), S(FENCED), A(FENCE), NO_FOLLOW,
	"no majority answered within fence_timeout: commits are refused from now on"},
	{S(PRIMARY), E(DEPOSED), S(FENCED), A(FENCE), FOLLOW(DEPOSED),
	"another node is the primary in a newer term: commits are refused from now on"},
	{S(FENCED), E(MAJORITY_OK), S(PRIMARY), A(UNFENCE), NO_FOLLOW,
	"a majority answers again and no newer term exists: commits allowed again"},
	IGNORE(FENCED, LEASE_RUNNING, "fenced already"),
	IGNORE(FENCED, MAJORITY_LOST, "fenced already"),
	{S(FENCED), E(DEPOSED), S(REJOINING), A(REJOIN), NO_FOLLOW,
	"another node is the primary in a newer term: rejoin as its standby"},

	/* An old primary on its way back: until it is a standby, it only rejoins. */
	{S(REJOINING), E(DEPOSED), S(REJOINING), A(REJOIN), NO_FOLLOW, NULL},
	IGNORE(REJOINING, MAJORITY_OK, "a rejoin is under way"),
	IGNORE(REJOINING, LEASE_RUNNING, "a rejoin is under way"),
	IGNORE(REJOINING, MAJORITY_LOST, "a rejoin is under way"),
	{S(REJOINING), E(REJOIN_PENDING), S(REJOINING), A(CHECK_REJOIN), FOLLOW(IS_STANDBY), NULL},
	{S(IDLE), E(REJOIN_PENDING), S(REJOINING), A(CHECK_REJOIN), FOLLOW(IS_STANDBY),
	"this old primary started as a standby: check that it follows the new primary"},
	{S(PRIMARY), E(REJOIN_PENDING), S(REJOINING), A(CHECK_REJOIN), FOLLOW(IS_STANDBY),
	"this old primary is a standby now: check that it follows the new primary"},
	{S(FENCED), E(REJOIN_PENDING), S(REJOINING), A(CHECK_REJOIN), FOLLOW(IS_STANDBY),
	"this old primary is a standby now: check that it follows the new primary"},
	{S(PROMOTING), E(REJOIN_PENDING), S(REJOINING), A(CHECK_REJOIN), FOLLOW(IS_STANDBY),
	"this node is an old primary in recovery: check that it follows the new primary"},
	{S(REJOINING), E(IS_STANDBY), S(FOLLOWING), A(NONE), NO_FOLLOW,
	"this node rejoined as a standby"},
	{S(PRIMARY), E(IS_STANDBY), S(FOLLOWING), A(NONE), NO_FOLLOW,
	"this node is a standby now"},
	{S(FENCED), E(IS_STANDBY), S(FOLLOWING), A(NONE), NO_FOLLOW,
	"this node is a standby now"},
	IGNORE(FOLLOWING, REJOIN_PENDING, "a rewind is under way"),
	IGNORE(SUSPECTING, REJOIN_PENDING, "a rewind is under way"),
	IGNORE(PRIMARY_LOST, REJOIN_PENDING, "a rewind is under way"),

	/* A standby watches the primary. */
	IGNORE(FOLLOWING, PRIMARY_SEEN, "the primary is in sight"),
	{S(FOLLOWING), E(PRIMARY_SILENT), S(SUSPECTING), A(SUSPECT), NO_FOLLOW,
	"no contact with the primary"},
	{S(FOLLOWING), E(PRIMARY_DEAD), S(PRIMARY_LOST), A(ELECT), FOLLOW(ELECTION_WON),
	"no contact with the primary for failover_timeout"},
	{S(SUSPECTING), E(PRIMARY_SEEN), S(FOLLOWING), A(NONE), NO_FOLLOW,
	"contact with the primary again"},
	IGNORE(SUSPECTING, PRIMARY_SILENT, "still less than failover_timeout"),
	{S(SUSPECTING), E(PRIMARY_DEAD), S(PRIMARY_LOST), A(ELECT), FOLLOW(ELECTION_WON),
	"no contact with the primary for failover_timeout"},
	{S(PRIMARY_LOST), E(PRIMARY_DEAD), S(PRIMARY_LOST), A(ELECT), FOLLOW(ELECTION_WON), NULL},
	{S(PRIMARY_LOST), E(PRIMARY_SEEN), S(FOLLOWING), A(NONE), NO_FOLLOW,
	"contact with the primary again; no failover"},
	{S(PRIMARY_LOST), E(PRIMARY_SILENT), S(SUSPECTING), A(NONE), NO_FOLLOW,
	"the primary was heard of again less than failover_timeout ago"},

	/* A standby that received WAL the new primary never had must be rewound. */
	{S(FOLLOWING), E(DIVERGED), S(FOLLOWING), A(REJOIN_DIVERGED), NO_FOLLOW, NULL},
	{S(SUSPECTING), E(DIVERGED), S(SUSPECTING), A(REJOIN_DIVERGED), NO_FOLLOW, NULL},
	{S(PRIMARY_LOST), E(DIVERGED), S(FOLLOWING), A(REJOIN_DIVERGED), NO_FOLLOW,
	"the primary is in sight again, but this standby's WAL diverged from it"},

	/* Another node is the primary now (a failover elsewhere): follow it. */
	{S(FOLLOWING), E(NEW_PRIMARY), S(FOLLOWING), A(FOLLOW), NO_FOLLOW,
	"another node is the primary: re-point primary_conninfo to it"},
	{S(SUSPECTING), E(NEW_PRIMARY), S(FOLLOWING), A(FOLLOW), NO_FOLLOW,
	"another node is the primary: re-point primary_conninfo to it"},
	{S(PRIMARY_LOST), E(NEW_PRIMARY), S(FOLLOWING), A(FOLLOW), NO_FOLLOW,
	"another node was promoted: re-point primary_conninfo to it"},

	/* An operator's failover or switchover to this node. */
	{S(FOLLOWING), E(MANUAL_FAILOVER), S(FOLLOWING), A(MANUAL_FAILOVER), FOLLOW(ELECTION_WON), NULL},
	{S(SUSPECTING), E(MANUAL_FAILOVER), S(SUSPECTING), A(MANUAL_FAILOVER), FOLLOW(ELECTION_WON), NULL},
	{S(PRIMARY_LOST), E(MANUAL_FAILOVER), S(PRIMARY_LOST), A(MANUAL_FAILOVER), FOLLOW(ELECTION_WON), NULL},
	{S(PRIMARY), E(MANUAL_FAILOVER), S(PRIMARY), A(REFUSE_MANUAL), NO_FOLLOW, NULL},
	{S(FENCED), E(MANUAL_FAILOVER), S(FENCED), A(REFUSE_MANUAL), NO_FOLLOW, NULL},
	{S(REJOINING), E(MANUAL_FAILOVER), S(REJOINING), A(REFUSE_MANUAL), NO_FOLLOW, NULL},

	/* Winning an election, by itself or at an operator's request. */
	{S(PRIMARY_LOST), E(ELECTION_WON), S(PROMOTING), A(PROMOTE), NO_FOLLOW,
	"a majority voted for this node: promote it"},
	{S(FOLLOWING), E(ELECTION_WON), S(PROMOTING), A(PROMOTE), NO_FOLLOW,
	"the operator's failover got its votes: promote this node"},
	{S(SUSPECTING), E(ELECTION_WON), S(PROMOTING), A(PROMOTE), NO_FOLLOW,
	"the operator's failover got its votes: promote this node"},
	{S(PROMOTING), E(IS_PRIMARY), S(PRIMARY), A(TAKE_OVER), NO_FOLLOW,
	"promoted: take over as the primary of the new term"},
	{S(PROMOTING), E(IS_STANDBY), S(PRIMARY_LOST), A(NONE), NO_FOLLOW,
	"promotion did not complete"},

	/* A promotion of this term's winner that finished late: take over. */
	{S(FOLLOWING), E(IS_PRIMARY), S(PRIMARY), A(TAKE_OVER), NO_FOLLOW,
	"this node won the current term and is out of recovery: take over"},
	{S(SUSPECTING), E(IS_PRIMARY), S(PRIMARY), A(TAKE_OVER), NO_FOLLOW,
	"this node won the current term and is out of recovery: take over"},
	{S(PRIMARY_LOST), E(IS_PRIMARY), S(PRIMARY), A(TAKE_OVER), NO_FOLLOW,
	"this node won the current term and is out of recovery: take over"},

	/*
	 * Out of recovery without an election won (pg_promote() by hand, a rejoin
	 * cut short, a restored copy), or a primary that was replaced and
	 * restarted: fenced, never a primary on its own say.
	 */
	{S(IDLE), E(NOT_ELECTED), S(FENCED), A(FENCE_UNELECTED), NO_FOLLOW,
	"out of recovery, but this node did not win the current term: it acknowledges nothing"},
	{S(FOLLOWING), E(NOT_ELECTED), S(FENCED), A(FENCE_UNELECTED), NO_FOLLOW,
	"this node left recovery without winning an election: it acknowledges nothing"},
	{S(SUSPECTING), E(NOT_ELECTED), S(FENCED), A(FENCE_UNELECTED), NO_FOLLOW,
	"this node left recovery without winning an election: it acknowledges nothing"},
	{S(PRIMARY_LOST), E(NOT_ELECTED), S(FENCED), A(FENCE_UNELECTED), NO_FOLLOW,
	"this node left recovery without winning an election: it acknowledges nothing"},
	{S(PROMOTING), E(NOT_ELECTED), S(FENCED), A(FENCE_UNELECTED), NO_FOLLOW,
	"promoted, but this node's win is not on disk: it acknowledges nothing"},
};

/*
 * The role each state implies.  A round that finds the node in the other
 * role derives IS_PRIMARY or IS_STANDBY before anything else; a state of
 * either role (IDLE, PROMOTING) always does.
 */
typedef enum StateRole
{
	ROLE_EITHER,
	ROLE_PRIMARY,
	ROLE_STANDBY
} StateRole;

static const StateRole state_roles[] = {
	ROLE_EITHER, ROLE_PRIMARY, ROLE_PRIMARY, ROLE_STANDBY, ROLE_STANDBY, ROLE_STANDBY,
	ROLE_EITHER, ROLE_PRIMARY
};

static const char *const state_names[] = {
	"idle", "primary", "fenced", "following", "suspecting", "primary_lost",
	"promoting", "rejoining"
};

static const char *const event_names[] = {
	"none", "not_registered", "is_primary", "not_elected", "is_standby", "rejoin_pending",
	"manual_failover", "majority_ok", "lease_running", "majority_lost", "deposed",
	"primary_seen", "primary_silent", "primary_dead", "new_primary", "diverged",
	"election_won", "take_over"
};

static const char *const action_names[] = {
	"none", "start_primary", "fence_unelected", "renew_lease", "fence", "unfence", "suspect", "elect",
	"manual_failover", "refuse_manual", "promote", "take_over", "follow", "rejoin",
	"check_rejoin", "rejoin_diverged"
};

/* What a round of probes can say, on a primary and on a standby. */
static const RkEvent primary_probe_events[] = {
	RK_EV_MAJORITY_OK, RK_EV_LEASE_RUNNING, RK_EV_MAJORITY_LOST, RK_EV_DEPOSED
};
static const RkEvent standby_probe_events[] = {
	RK_EV_PRIMARY_SEEN, RK_EV_PRIMARY_SILENT, RK_EV_PRIMARY_DEAD, RK_EV_NEW_PRIMARY,
	RK_EV_DIVERGED
};

StaticAssertDecl(lengthof(state_names) == RK_NUM_STATES, "state names");
StaticAssertDecl(lengthof(state_roles) == RK_NUM_STATES, "state roles");
StaticAssertDecl(lengthof(event_names) == RK_NUM_EVENTS, "event names");
StaticAssertDecl(lengthof(action_names) == RK_NUM_ACTIONS, "action names");
StaticAssertDecl(RK_NUM_EVENTS <= 32, "follow-up events fit a bit mask");

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

const char *
rk_action_name(RkAction a)
{
	return a < RK_NUM_ACTIONS ? action_names[a] : "?";
}

const RkTransition *
rk_transition_table(int *n)
{
	*n = lengthof(transitions);
	return transitions;
}

/* The row for (state, event), or NULL if the table has none. */
const RkTransition *
rk_transition_for(RkState state, RkEvent event)
{
	for (int i = 0; i < (int) lengthof(transitions); i++)
		if (transitions[i].state == state && transitions[i].event == event)
			return &transitions[i];
	return NULL;
}

bool
rk_transition_is_ignore(const RkTransition *t)
{
	return t->action == RK_ACT_NONE && t->next == t->state;
}

/*
 * The one event a round hands to the table.  In order: not registered; an
 * old primary in recovery that must be checked; a role the state does not
 * imply; an operator's request; what the probes said.  Before the worker
 * has probed (probe_event NONE) the result may be NONE, or an event that
 * needs the probes' view (rk_event_needs_probe): then it probes and asks
 * again.
 */
RkEvent
rk_derive_event(RkState state, const RkObservation *obs)
{
	StateRole	role = state_roles[state];

	if (!obs->registered)
		return RK_EV_NOT_REGISTERED;
	if (obs->in_recovery && obs->rejoin_pending)
		return RK_EV_REJOIN_PENDING;
	if (role == ROLE_EITHER || (role == ROLE_STANDBY) != obs->in_recovery)
	{
		if (obs->in_recovery)
			return RK_EV_IS_STANDBY;
		return obs->elected ? RK_EV_IS_PRIMARY : RK_EV_NOT_ELECTED;
	}
	if (obs->manual_request)
		return RK_EV_MANUAL_FAILOVER;
	return obs->probe_event;
}

/* Events whose actions work on what the probes saw. */
bool
rk_event_needs_probe(RkEvent e)
{
	return e != RK_EV_NOT_REGISTERED && e != RK_EV_IS_PRIMARY && e != RK_EV_IS_STANDBY &&
		e != RK_EV_NOT_ELECTED;
}

const RkEvent *
rk_probe_events(bool in_recovery, int *n)
{
	if (in_recovery)
	{
		*n = lengthof(standby_probe_events);
		return standby_probe_events;
	}
	*n = lengthof(primary_probe_events);
	return primary_probe_events;
}
