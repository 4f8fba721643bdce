/*-------------------------------------------------------------------------
 *
 * status.c
 *		Who this node is and what it knows: its name, its role and position
 *		in the WAL, and what its worker last saw of the other nodes.  These
 *		are the C halves of rk_status(), which joins them with the registry
 *		and the server's own replication views.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "replication/walreceiver.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "core/local.h"
#include "core/shmem.h"
#include "extension/extension.h"

PG_FUNCTION_INFO_V1(rk_local_node);
PG_FUNCTION_INFO_V1(rk_peer_view);

static Datum
timestamp_or_null(TimestampTz t, bool *isnull)
{
	*isnull = (t == 0);
	return TimestampTzGetDatum(t);
}

/*
 * rk_local_node(): one row about this node as it sees itself.  Also the
 * privilege gate of rk_status(), which is plain SQL around it.
 */
Datum
rk_local_node(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8] = {0};
	char	   *name;
	bool		in_recovery = RecoveryInProgress();
	XLogRecPtr	lsn;

	rk_require_superuser("rk_local_node");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	name = rk_self_name();
	if (name)
		values[0] = CStringGetTextDatum(name);
	else
		nulls[0] = true;
	values[1] = BoolGetDatum(in_recovery);
	values[2] = Int32GetDatum((int32) rk_current_timeline());
	lsn = in_recovery ? Max(GetWalRcvFlushRecPtr(NULL, NULL), GetXLogReplayRecPtr(NULL))
		: rk_flush_lsn();
	values[3] = LSNGetDatum(lsn);

	LWLockAcquire(rk_shared->lock, LW_SHARED);
	values[4] = Int64GetDatum((int64) rk_shared->state.term);
	values[5] = CStringGetTextDatum(rk_shared->worker_state);
	values[6] = timestamp_or_null(rk_shared->last_seen_primary, &nulls[6]);
	/* Why it is not ready, and why its WAL receiver cannot log in: either, both, or NULL. */
	values[7] = CStringGetTextDatum(psprintf("%s%s%s", rk_shared->readiness,
											 rk_shared->readiness[0] && rk_shared->receiver_login[0] ? "; " : "",
											 rk_shared->receiver_login));
	nulls[7] = !rk_shared->readiness[0] && !rk_shared->receiver_login[0];
	LWLockRelease(rk_shared->lock);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* rk_peer_view(): what this node's worker last saw of each other node. */
Datum
rk_peer_view(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RkPeer		peers[RK_MAX_NODES];
	int			npeers;

	rk_require_superuser("rk_peer_view");
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(rk_shared->lock, LW_SHARED);
	npeers = rk_shared->npeers;
	memcpy(peers, rk_shared->peers, sizeof(RkPeer) * npeers);
	LWLockRelease(rk_shared->lock);

	for (int i = 0; i < npeers; i++)
	{
		RkPeer	   *p = &peers[i];
		Datum		values[10];
		bool		nulls[10] = {0};
		bool		probed = !p->is_self && p->last_attempt != 0;

		values[0] = CStringGetTextDatum(p->name);
		values[1] = BoolGetDatum(p->reachable);
		nulls[1] = !probed;
		values[2] = timestamp_or_null(p->last_ok, &nulls[2]);
		values[3] = BoolGetDatum(p->in_recovery);
		nulls[3] = !probed || !p->reachable;
		values[4] = Int32GetDatum((int32) p->timeline);
		nulls[4] = nulls[3];
		values[5] = LSNGetDatum(p->lsn);
		nulls[5] = nulls[3];
		values[6] = Int64GetDatum((int64) p->term);
		nulls[6] = nulls[3];
		values[7] = CStringGetTextDatum(p->error);
		nulls[7] = p->error[0] == '\0';
		values[8] = BoolGetDatum(p->is_self);
		/* When that node last had contact with the primary, as it told us. */
		values[9] = TimestampTzGetDatum(p->in_recovery
										? TimestampTzPlusMilliseconds(p->last_ok, -p->silence_ms)
										: p->last_ok);
		nulls[9] = nulls[3];
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
