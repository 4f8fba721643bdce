/*-------------------------------------------------------------------------
 *
 * pause.c
 *		The maintenance pause (rk_pause / rk_resume) as the worker keeps it.
 *
 * The registry says whether the cluster is paused; a node's state file
 * says whether an rk_resume() on a standby ended that pause here.  While
 * paused, rk_act_elect runs no election and the rejoin gate (rejoin.c)
 * lets no old primary or diverged standby be rewound; fences, the lease
 * and the fence at start work as always.  What a local rk_resume() needs
 * afterwards happens here: it is handed to the other nodes, and the node
 * that is the primary clears the pause in the registry.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "core/local.h"
#include "core/node_state.h"
#include "core/shmem.h"
#include "core/peer.h"
#include "core/registry.h"
#include "core/settings.h"
#include "worker/fsm.h"

/* How often a resume made here is handed on while the registry still says paused. */
#define RK_RESUME_RESEND_MS 1000

/*
 * Is the pause in force on this node?  Log when that changes, and publish
 * it for rk_peer_state.
 *
 * The registry copy decides on the primary, and on a standby whose primary
 * is gone (it is as new as any).  Where the primary this node knows
 * answers, unfenced and in this node's term or a newer one, its judgement
 * decides instead: a fenced
 * old primary's registry is its own, older history, and a standby may lag;
 * neither may rewind a node or run an election that the cluster's pause
 * forbids.  A pause this node itself was told is over stays over.
 */
void
rk_pause_note(RkView *v)
{
	RkWorkerContext *ctx = v->ctx;
	bool		own_primary = !v->in_recovery && rk_state_elected(&v->st) &&
		pg_atomic_read_u32(&rk_shared->fenced) == 0;
	uint64		id = v->pause_id;

	v->paused = v->pause_set && v->st.resumed_pause < v->pause_id;
	for (int i = 0; i < v->npeers && !own_primary; i++)
	{
		RkPeer	   *p = &v->peers[i];

		if (p->is_self || !p->reachable || p->in_recovery || p->fenced || p->term < v->st.term ||
			p->pause_state < 0 || strcmp(p->name, v->st.primary_name) != 0)
			continue;
		v->paused = p->pause_state == 1 && v->st.resumed_pause < p->pause_id;
		id = p->pause_id;
		if (v->paused && (!v->pause_set || id != v->pause_id))
		{
			snprintf(v->paused_since, sizeof(v->paused_since), "a time %s knows", p->name);
			snprintf(v->pause_reason, sizeof(v->pause_reason), "so the primary %s says", p->name);
		}
		break;
	}

	if (v->paused && ctx->pause_logged != id)
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "the cluster is paused (pause " UINT64_FORMAT " since %s%s%s): "
						"no automatic failover, rejoin or demotion until rk_resume()",
						id, v->paused_since, v->pause_reason[0] ? ": " : "", v->pause_reason)));
	else if (!v->paused && ctx->pause_logged != 0)
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "the cluster's pause " UINT64_FORMAT " is over here: automatic failover, rejoin and demotion are on again",
						ctx->pause_logged)));
	ctx->pause_logged = v->paused ? id : 0;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->paused = v->paused;
	rk_shared->pause_id = Max(v->pause_id, id);
	LWLockRelease(rk_shared->lock);
}

/* The primary clears a pause that a standby's rk_resume() ended. */
static void
clear_in_registry(RkView *v)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum((int64) v->pause_id)};
	bool		started = rk_xact_begin();
	bool		cleared;

	SPI_connect();
	cleared = SPI_execute_with_args(psprintf("UPDATE %s SET paused_at = NULL, paused_reason = NULL "
											 "WHERE pause_id = $1 AND paused_at IS NOT NULL",
											 rk_table("rk_cluster")),
									1, argtypes, values, NULL, false, 0) == SPI_OK_UPDATE &&
		SPI_processed == 1;
	SPI_finish();
	rk_xact_end(started);
	if (cleared)
		rk_journal(v, "resumed", v->self, "pause " UINT64_FORMAT " ended by rk_resume() on a standby; cleared in the registry",
				   v->pause_id);
}

/*
 * Hand the end of a pause made here (rk_resume, state file) to every node
 * that has not taken it yet: a standby whose registry copy still says
 * paused, and an old primary, fenced, whose own registry copy never sees
 * the new primary clear it.  A node that does not know the pause (its
 * registry is older, or from another history) is not held by it.
 */
static void
hand_on(RkView *v)
{
	RkWorkerContext *ctx = v->ctx;
	RkCall		calls[RK_MAX_NODES];
	int			ncalls = 0;
	char		id[32];
	const char *params[2];
	uint64		resumed = v->st.resumed_pause;

	if (ctx->resume_sent_ms != 0 && v->mono - ctx->resume_sent_ms < RK_RESUME_RESEND_MS)
		return;
	snprintf(id, sizeof(id), UINT64_FORMAT, resumed);
	params[0] = v->self;
	params[1] = id;
	for (int i = 0; i < v->npeers && i < RK_MAX_NODES; i++)
	{
		RkPeer	   *p = &v->peers[i];

		if (strcmp(ctx->resume_node[i], p->name) != 0)
		{
			strlcpy(ctx->resume_node[i], p->name, NAMEDATALEN);
			ctx->resume_acked[i] = 0;
		}
		if (p->is_self || !p->reachable || ctx->resume_acked[i] >= resumed)
			continue;
		rk_call_init(&calls[ncalls], p->host, p->port, v->peer_user, v->self,
					 psprintf("SELECT %s.rk_peer_resume($1, $2::bigint)", v->schema_q), 2, params);
		calls[ncalls].peer_index = i;
		ncalls++;
	}
	if (ncalls == 0)
		return;
	ctx->resume_sent_ms = v->mono;
	rk_calls_run(calls, ncalls, rk_probe_timeout_ms);
	for (int c = 0; c < ncalls; c++)
	{
		int			i = calls[c].peer_index;
		const char *news = rk_call_value(&calls[c], "rk_peer_resume");

		if (news != NULL)
		{
			ctx->resume_acked[i] = resumed;
			if (strcmp(news, "t") == 0)
				rk_journal(v, "resumed", v->peers[i].name, "pause " UINT64_FORMAT " ended there too (handed on by %s)",
						   resumed, v->self);
		}
		else if (strcmp(calls[c].sqlstate, "22023") == 0 && (!v->peers[i].in_recovery || !v->pause_set))
		{
			/*
			 * It does not know the pause: an old primary's history without
			 * it, or a standby that will replay the registry's clearing
			 * after the pause.  A standby that has not replayed a pause
			 * still in force is asked again.
			 */
			ctx->resume_acked[i] = resumed;
		}
		else
			ereport(DEBUG1,
					(errmsg(RK_LOG_PREFIX "could not hand the end of pause " UINT64_FORMAT " to %s: %s",
							resumed, v->peers[i].name, calls[c].error)));
	}
	rk_calls_clear(calls, ncalls);
}

/*
 * After the round's action: the primary clears a pause that was ended on
 * it, and a node hands on the end of a pause made on it.
 */
void
rk_pause_upkeep(RkView *v, RkState state)
{
	if (v->pause_set && !v->paused && state == RK_STATE_PRIMARY && !v->in_recovery &&
		!RecoveryInProgress() && pg_atomic_read_u32(&rk_shared->fenced) == 0)
		clear_in_registry(v);
	if (v->st.resumed_pause != 0 && v->self_idx >= 0)
		hand_on(v);
}
