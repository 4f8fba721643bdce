/*-------------------------------------------------------------------------
 *
 * fsm.c
 *		Running the state machine: look up the row of core/fsm.c's table
 *		for (state, event), run its action, journal a change of state, and
 *		dispatch at once the follow-up event the action returned, which
 *		must be one its row declares.
 *
 * Every change of state is journaled: logged with the kit's prefix at
 * once, and written to rk_events when this node is (or becomes) primary.
 * The journal line carries the row's "why" and what the action found.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "worker/fsm.h"

typedef RkEvent (*RkActionFn) (RkView *view);

/* The table names actions; these are they, in RkAction order. */
static const RkActionFn actions[] = {
	NULL,						/* RK_ACT_NONE */
	rk_act_start_primary,
	rk_act_fence_unelected,
	rk_act_renew_lease,
	rk_act_fence,
	rk_act_unfence,
	rk_act_suspect,
	rk_act_elect,
	rk_act_manual_failover,
	rk_act_refuse_manual,
	rk_act_promote,
	rk_act_take_over,
	rk_act_follow,
	rk_act_rejoin,
	rk_act_check_rejoin,
	rk_act_rejoin_diverged,
};

StaticAssertDecl(lengthof(actions) == RK_NUM_ACTIONS, "one function per action");

/*
 * Run `event` in `state` and whatever follows from it.  A pair with no row
 * is one the derivation cannot produce (sql/fsm.sql checks that); it is
 * logged and changes nothing.  Returns the new state.
 */
RkState
rk_fsm_dispatch(RkState state, RkEvent event, RkView *view)
{
	for (int depth = 0; event != RK_EV_NONE && depth < RK_NUM_STATES; depth++)
	{
		const RkTransition *t = rk_transition_for(state, event);
		RkEvent		follow_up = RK_EV_NONE;

		if (t == NULL)
		{
			elog(WARNING, RK_LOG_PREFIX "no transition for event %s in state %s",
				 rk_event_name(event), rk_state_name(state));
			return state;
		}
		view->why[0] = '\0';
		if (t->action != RK_ACT_NONE)
			follow_up = actions[t->action] (view);
		if (follow_up != RK_EV_NONE && (t->follow_ups & RK_EVENT_BIT(follow_up)) == 0)
			elog(ERROR, RK_LOG_PREFIX "action %s returned %s, which its row in state %s does not declare",
				 rk_action_name(t->action), rk_event_name(follow_up), rk_state_name(state));
		if (t->next != state && t->why != NULL)
			rk_journal(view, "transition", NULL, "%s -> %s on %s: %s%s%s",
					   rk_state_name(state), rk_state_name(t->next), rk_event_name(event),
					   t->why, view->why[0] ? "; " : "", view->why);
		state = t->next;
		event = follow_up;
	}
	return state;
}
