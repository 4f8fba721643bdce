/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *		What an operator changes about the automatic rules:
 *
 *		rk_pause(reason)
 *			maintenance mode, for the whole cluster: no automatic
 *			failover, rejoin or demotion until rk_resume();
 *		rk_resume()
 *			from any node, also while the primary is down;
 *		rk_set_node(node_name, priority)
 *			a node's failover priority: ties between nodes with equal WAL
 *			go to the higher one, and 0 keeps a node from ever being
 *			promoted automatically.
 *
 * The pause lives in the registry (rk_cluster), so it reaches every node
 * with the WAL and survives restarts and failovers.  A standby cannot
 * write the registry: its rk_resume() is kept in its state file instead
 * and handed to the other nodes (rk_peer_resume), and the node that is or
 * becomes the primary clears the pause for good.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"

#include "core/credentials.h"
#include "core/local.h"
#include "core/node_state.h"
#include "core/registry.h"
#include "core/shmem.h"
#include "extension/extension.h"

PG_FUNCTION_INFO_V1(rk_pause);
PG_FUNCTION_INFO_V1(rk_resume);
PG_FUNCTION_INFO_V1(rk_set_node);

#define RK_PAUSE_REASON_MAX 200

static void
require_version(const char *funcname)
{
	if (!rk_extension_at_least("1.6"))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s needs version 1.6 of the replication_kit extension", funcname),
				 errhint("Run ALTER EXTENSION replication_kit UPDATE on the primary.")));
}

/*
 * The change is applied on the synchronous standbys before the call
 * returns (remote_apply), so that a standby elected right after has it
 * in the registry it reads, not only flushed.  A session that asked for
 * less (synchronous_commit = local or off) gets what it asked for.
 */
static void
commit_applied(void)
{
	if (synchronous_commit >= SYNCHRONOUS_COMMIT_REMOTE_WRITE)
		(void) set_config_option("synchronous_commit", "remote_apply", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
}

static void
wake_worker(void)
{
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	if (rk_shared->worker_latch)
		SetLatch(rk_shared->worker_latch);
	LWLockRelease(rk_shared->lock);
}

/* One row of a registry statement, its columns as text (NULL: SQL null). */
static char **
registry_row(const char *sql, int nargs, Oid *argtypes, Datum *values, const char *nulls, int ncols)
{
	char	  **row = NULL;
	int			ret;

	SPI_connect();
	ret = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, 1);
	if (ret < 0)
		elog(ERROR, "registry statement failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1 && SPI_tuptable != NULL)
	{
		row = MemoryContextAllocZero(CurTransactionContext, sizeof(char *) * ncols);
		for (int i = 0; i < ncols; i++)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);

			row[i] = v ? MemoryContextStrdup(CurTransactionContext, v) : NULL;
		}
	}
	SPI_finish();
	return row;
}

/*
 * rk_pause(reason): on the primary.  The pause commits like any other
 * commit (synchronous standbys included), so once the call returns every
 * node that could be elected has it.  A second call while paused only
 * changes the reason.
 */
Datum
rk_pause(PG_FUNCTION_ARGS)
{
	char	   *reason = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtypes[3] = {TEXTOID, INT8OID, INT8OID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	char	  **row;
	uint64		term;
	uint64		resumed;

	rk_require_superuser("rk_pause");
	rk_require_primary("rk_pause");
	require_version("rk_pause");
	if (reason != NULL)
	{
		if (strlen(reason) > RK_PAUSE_REASON_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
					 errmsg("the reason is too long (%zu bytes)", strlen(reason)),
					 errdetail("It goes to every node's log and rk_status(): at most %d bytes.",
							   RK_PAUSE_REASON_MAX)));
		for (const char *c = reason; *c; c++)
			if ((unsigned char) *c < 0x20 || *c == 0x7f)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the reason must not contain control characters"),
						 errdetail("It goes to every node's log, one line.")));
	}
	if (!rk_registry_has_primary(NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is not set up as a primary yet"),
				 errhint("Run rk_setup_primary() first.")));

	LWLockAcquire(rk_shared->lock, LW_SHARED);
	term = rk_shared->state.term;
	resumed = rk_shared->state.resumed_pause;
	LWLockRelease(rk_shared->lock);
	commit_applied();

	if (reason)
		values[0] = CStringGetTextDatum(reason);
	else
		nulls[0] = 'n';
	values[1] = Int64GetDatum((int64) term);
	values[2] = Int64GetDatum((int64) resumed);

	/*
	 * Already paused: a new reason only.  (Unless rk_resume() has ended
	 * that pause here already, and the worker is about to clear it: then
	 * this is a new pause.)
	 */
	row = registry_row(psprintf("UPDATE %s SET paused_reason = $1 WHERE paused_at IS NOT NULL AND pause_id > $3 "
								"RETURNING pause_id", rk_table("rk_cluster")),
					   3, argtypes, values, nulls, 1);
	if (row != NULL)
	{
		ereport(NOTICE,
				(errmsg("the cluster is paused already (pause %s); the reason is updated", row[0])));
		rk_registry_event("paused", NULL, psprintf("pause %s goes on: %s", row[0], reason ? reason : "(no reason given)"));
		wake_worker();
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("paused (pause %s goes on)", row[0])));
	}

	/*
	 * The pause's number is new in every history: a primary's pauses count
	 * from its term times 1000, so that one a lost primary made and no
	 * other node has is never taken for another one of the same number.
	 */
	row = registry_row(psprintf("UPDATE %s SET pause_id = greatest(pause_id + 1, $2 * 1000, $3 + 1), "
								"paused_at = now(), paused_reason = $1 RETURNING pause_id",
								rk_table("rk_cluster")),
					   3, argtypes, values, nulls, 1);
	if (row == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the registry has no cluster row"),
				 errhint("Run rk_setup_primary() first.")));
	rk_registry_event("paused", NULL, psprintf("pause %s: %s", row[0], reason ? reason : "(no reason given)"));
	wake_worker();
	PG_RETURN_TEXT_P(cstring_to_text(
		"paused: no automatic failover, rejoin or demotion on any node until rk_resume(); "
		"rk_failover() and rk_switchover() still work, and a primary that loses its majority still stops acknowledging"));
}

/*
 * rk_resume(): on the primary it clears the pause in the registry.  On a
 * standby, or a fenced old primary, whose registry copy cannot be written,
 * the pause ends on this node at once (in its state file, fsynced), and
 * its worker hands the end on to the other nodes; whichever node is or
 * becomes the primary clears the registry.
 */
Datum
rk_resume(PG_FUNCTION_ARGS)
{
	char	   *registry_id;
	char	   *id;
	uint64		pause_id = 0;
	bool		fenced;
	bool		held;
	uint64		held_id;

	rk_require_superuser("rk_resume");
	require_version("rk_resume");
	/* It writes the node's state file, which a ROLLBACK would not undo. */
	rk_require_not_in_transaction_block("rk_resume");

	registry_id = rk_query_value(psprintf("SELECT pause_id FROM %s WHERE paused_at IS NOT NULL",
										  rk_table("rk_cluster")), 0, NULL, NULL);
	if (registry_id)
		pause_id = strtoull(registry_id, NULL, 10);
	/* Held by the primary's pause too, which an old primary's registry copy lacks. */
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	held = rk_shared->paused;
	held_id = rk_shared->pause_id;
	LWLockRelease(rk_shared->lock);
	if (held && held_id > pause_id)
		pause_id = held_id;
	if (pause_id == 0)
	{
		ereport(NOTICE,
				(errmsg("the cluster is not paused")));
		PG_RETURN_TEXT_P(cstring_to_text("not paused"));
	}
	fenced = pg_atomic_read_u32(&rk_shared->fenced) != 0;

	/*
	 * The end goes into this node's state file first, also on the primary:
	 * its worker hands it to every other node, a fenced old primary among
	 * them, whose own copy of the registry never sees the pause cleared.
	 */
	(void) rk_state_note_resumed(pause_id);
	id = psprintf(UINT64_FORMAT, pause_id);

	if (!RecoveryInProgress() && !fenced)
	{
		Oid			argtypes[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum((int64) pause_id)};

		(void) registry_row(psprintf("UPDATE %s SET paused_at = NULL, paused_reason = NULL WHERE pause_id = $1 "
									 "RETURNING pause_id", rk_table("rk_cluster")),
							1, argtypes, values, NULL, 1);
		rk_registry_event("resumed", NULL, psprintf("pause %s ended by rk_resume() on %s", id,
													rk_self_name() ? rk_self_name() : "the primary"));
		wake_worker();
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("resumed: pause %s ended; automatic failover, rejoin and demotion are on again",
												  id)));
	}

	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "pause %s ended on this node by rk_resume(); the other nodes are told, and the primary clears it in the registry",
					id)));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("resumed on this node: pause %s no longer holds here; "
											  "its worker tells the other nodes, and the primary, or the next one elected, "
											  "clears it in the registry", id)));
}

/*
 * rk_set_node(node_name, priority): on the primary, into the registry.
 */
Datum
rk_set_node(PG_FUNCTION_ARGS)
{
	char	   *name = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		priority;
	Oid			argtypes[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	char	  **row;
	char	   *eligible;

	rk_require_superuser("rk_set_node");
	rk_require_primary("rk_set_node");
	require_version("rk_set_node");
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("node name must not be null")));
	rk_validate_node_name(name);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("nothing to set for node \"%s\"", name),
				 errhint("Pass priority => n: 0 never promotes the node automatically; among nodes with equal WAL the highest wins (default 100).")));
	priority = PG_GETARG_INT32(1);
	if (priority < 0 || priority > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid priority: %d", priority),
				 errdetail("A priority is from 0 (never promoted automatically) to 1000.")));

	commit_applied();
	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(priority);
	row = registry_row(psprintf("UPDATE %1$s n SET priority = $2 FROM %1$s o WHERE n.node_name = $1 "
								"AND o.node_id = n.node_id RETURNING o.priority", rk_table("rk_nodes")),
					   2, argtypes, values, NULL, 1);
	if (row == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node \"%s\" is not registered", name),
				 errhint("rk_status() lists the registered nodes.")));
	rk_registry_event("set_node", name, psprintf("priority %s -> %d", row[0], priority));

	eligible = rk_query_value(psprintf("SELECT count(*) FROM %s WHERE priority > 0 AND role = 'standby'",
									   rk_table("rk_nodes")), 0, NULL, NULL);
	if (eligible && atoi(eligible) == 0)
		ereport(WARNING,
				(errmsg("no standby may be promoted automatically now"),
				 errdetail("Every standby has priority 0: if the primary dies, only rk_failover() promotes one.")));
	wake_worker();
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%s: priority %s -> %d%s", name, row[0], priority,
											  priority == 0 ? " (never promoted automatically)" : "")));
}
