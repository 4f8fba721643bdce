/*-------------------------------------------------------------------------
 *
 * transitions.c
 *		The state machine, shown from SQL:
 *
 *		rk_transitions()
 *			every row of the table the workers run (core/fsm.c): state,
 *			event, next state, action, the events the action may return,
 *			and why; an explicit "ignore" row has action 'none' and its
 *			own state as the next;
 *		rk_derivable_events()
 *			every (state, event) pair a worker's round can derive, found
 *			by running the derivation itself over every observation.
 *
 * sql/fsm.sql uses both to check that the table is complete and has no
 * row that can never fire; tools/fsm-diagram draws the README's picture
 * from the first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "core/fsm.h"
#include "extension/extension.h"

PG_FUNCTION_INFO_V1(rk_transitions);
PG_FUNCTION_INFO_V1(rk_derivable_events);

/* The follow-up events of a row, as text[]. */
static Datum
follow_up_array(uint32 mask)
{
	Datum		elems[RK_NUM_EVENTS];
	int			n = 0;

	for (int e = 0; e < RK_NUM_EVENTS; e++)
		if (mask & RK_EVENT_BIT(e))
			elems[n++] = CStringGetTextDatum(rk_event_name((RkEvent) e));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

Datum
rk_transitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n;
	const RkTransition *table = rk_transition_table(&n);

	rk_require_superuser("rk_transitions");
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < n; i++)
	{
		const RkTransition *t = &table[i];
		Datum		values[7];
		bool		nulls[7] = {0};

		values[0] = CStringGetTextDatum(rk_state_name(t->state));
		values[1] = CStringGetTextDatum(rk_event_name(t->event));
		values[2] = CStringGetTextDatum(rk_state_name(t->next));
		values[3] = CStringGetTextDatum(rk_action_name(t->action));
		values[4] = follow_up_array(t->follow_ups);
		values[5] = BoolGetDatum(rk_transition_is_ignore(t));
		values[6] = t->why ? CStringGetTextDatum(t->why) : (Datum) 0;
		nulls[6] = t->why == NULL;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Every observation a round can make, run through rk_derive_event() in
 * every state: the pairs a worker can meet before any follow-up event.
 */
Datum
rk_derivable_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	rk_require_superuser("rk_derivable_events");
	InitMaterializedSRF(fcinfo, 0);
	for (int s = 0; s < RK_NUM_STATES; s++)
	{
		bool		seen[RK_NUM_EVENTS] = {0};

		for (int bits = 0; bits < 32; bits++)
		{
			RkObservation obs = {0};
			int			nprobe;
			const RkEvent *probe;

			obs.registered = (bits & 1) != 0;
			obs.in_recovery = (bits & 2) != 0;
			obs.rejoin_pending = (bits & 4) != 0;
			obs.manual_request = (bits & 8) != 0;
			obs.elected = (bits & 16) != 0;
			probe = rk_probe_events(obs.in_recovery, &nprobe);
			for (int p = 0; p < nprobe; p++)
			{
				obs.probe_event = probe[p];
				seen[rk_derive_event((RkState) s, &obs)] = true;
			}
		}
		for (int e = 0; e < RK_NUM_EVENTS; e++)
		{
			Datum		values[2];
			bool		nulls[2] = {0};

			if (!seen[e])
				continue;
			values[0] = CStringGetTextDatum(rk_state_name((RkState) s));
			values[1] = CStringGetTextDatum(rk_event_name((RkEvent) e));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
