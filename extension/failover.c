/*-------------------------------------------------------------------------
 *
 * failover.c
 *		rk_failover(target, force, dry_run): a failover an operator asks for,
 *		from any node.  The election itself runs in the target's worker,
 *		under the same rules as an automatic one (election.c); this
 *		function only picks the target and carries the request there.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "replication_kit.h"
#include "peer.h"

PG_FUNCTION_INFO_V1(rk_failover);

/*
 * The standby with the most WAL as this node's worker last saw them (this
 * node included if it is a standby); NULL if none.
 */
static char *
choose_target(void)
{
	char	   *self = rk_self_name();
	char	   *best = NULL;
	TimeLineID	best_tli = 0;
	XLogRecPtr	best_lsn = InvalidXLogRecPtr;

	if (RecoveryInProgress() && self)
	{
		best = self;
		best_tli = rk_current_timeline();
		best_lsn = rk_local_lsn();
	}
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	for (int i = 0; i < rk_shared->npeers; i++)
	{
		RkPeer	   *p = &rk_shared->peers[i];

		if (p->is_self || !p->reachable || !p->in_recovery)
			continue;
		if (best == NULL || p->timeline > best_tli ||
			(p->timeline == best_tli && p->lsn > best_lsn))
		{
			best = pstrdup(p->name);
			best_tli = p->timeline;
			best_lsn = p->lsn;
		}
	}
	LWLockRelease(rk_shared->lock);
	return best;
}

Datum
rk_failover(PG_FUNCTION_ARGS)
{
	char	   *target = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		force = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	bool		dry_run = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	char	   *self;
	char	   *result = NULL;
	bool		ok;

	rk_require_superuser("rk_failover");
	self = rk_self_name();
	if (target != NULL)
	{
		rk_validate_node_name(target);
		if (rk_query_value(psprintf("SELECT 1 FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
						   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(target)}) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("node \"%s\" is not registered", target),
					 errhint("rk_status() lists the registered nodes.")));
	}
	else if ((target = choose_target()) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no standby to fail over to"),
				 errdetail("This node's worker reaches no standby."),
				 errhint("Name the target: rk_failover('node_name').")));

	if (self != NULL && strcmp(target, self) == 0)
		ok = rk_local_failover(force, dry_run, &result);
	else
	{
		/* Carry the request to the target's worker, as the replication role. */
		char	   *host = rk_query_value(psprintf("SELECT host FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
										  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(target)});
		char	   *port = rk_query_value(psprintf("SELECT port FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
										  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(target)});
		char	   *role = rk_registry_replication_role();
		const char *params[2] = {force ? "true" : "false", dry_run ? "true" : "false"};
		RkCall		call;
		const char *answer;

		if (role == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no replication role is set up"),
					 errhint("Run rk_create_replicator() on the primary.")));
		rk_call_init(&call, host, atoi(port), role, self,
					 "SELECT rk_peer_failover($1::boolean, $2::boolean) AS answer", 2, params);
		rk_calls_run(&call, 1, 130 * 1000);
		answer = rk_call_value(&call, "answer");
		if (answer == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not reach node \"%s\" to fail over to it", target),
					 errdetail("%s", call.error)));
		ok = strncmp(answer, "ok: ", 4) == 0;
		result = pstrdup(answer + (ok ? 4 : strncmp(answer, "refused: ", 9) == 0 ? 9 : 0));
		rk_calls_clear(&call, 1);
	}

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("failover to \"%s\" refused", target),
				 errdetail("%s", result)));
	if (strstr(result, "WARNING:") != NULL)
		ereport(WARNING,
				(errmsg("forced failover to \"%s\" may have lost acknowledged commits", target),
				 errdetail("%s", result)));
	PG_RETURN_TEXT_P(cstring_to_text(result));
}
