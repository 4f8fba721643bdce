/*-------------------------------------------------------------------------
 *
 * failover.c
 *		What an operator asks for, from any node:
 *
 *		rk_failover(target, force, dry_run)
 *			a failover under the automatic rules (or forced past them);
 *		rk_switchover(target)
 *			a planned swap with a healthy primary: fence it, let the
 *			target take all its WAL, promote the target, and the old
 *			primary rejoins as its standby; no acknowledged commit lost;
 *		rk_rejoin()
 *			on a fenced old primary, when replication_kit.auto_rejoin is
 *			off: rewind and restart it as a standby of the new primary;
 *		rk_conninfo(purpose, dbname, user_name)
 *			the multi-host connection string applications use.
 *
 * The elections run in the target's worker (worker/election.c); these
 * functions pick the target and carry the request there.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "commands/dbcommands.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "core/credentials.h"
#include "core/conninfo.h"
#include "core/local.h"
#include "core/peer.h"
#include "core/registry.h"
#include "core/shmem.h"
#include "extension/extension.h"

PG_FUNCTION_INFO_V1(rk_failover);
PG_FUNCTION_INFO_V1(rk_switchover);
PG_FUNCTION_INFO_V1(rk_rejoin);
PG_FUNCTION_INFO_V1(rk_conninfo);

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
		rk_election_position(&best_tli, &best_lsn);
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

static bool remote_failover(const char *self, const char *target, bool force, bool dry_run,
							bool planned, char **result, bool *forced_loss);

/* Carry a failover request to `target` (this node or another) and return its answer. */
static char *
request_failover(const char *funcname, char *target, bool force, bool dry_run, bool planned)
{
	char	   *self = rk_self_name();
	char	   *result = NULL;
	bool		forced_loss = false;
	bool		ok;

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
				 errhint("Name the target: %s('node_name').", funcname)));

	if (self != NULL && strcmp(target, self) == 0)
		ok = rk_local_failover(force, dry_run, planned, &result, &forced_loss);
	else
		ok = remote_failover(self, target, force, dry_run, planned, &result, &forced_loss);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s to \"%s\" refused", planned ? "switchover" : "failover", target),
				 errdetail("%s", result)));
	if (forced_loss)
		ereport(WARNING,
				(errmsg("forced failover to \"%s\" may have lost acknowledged commits", target),
				 errdetail("%s", result)));
	return result;
}

/* Carry the request to the target's worker, as the node role. */
static bool
remote_failover_call(const char *self, const char *target, bool force, bool dry_run, bool planned,
					 char **result, bool *forced_loss)
{
	Datum		name = CStringGetTextDatum(target);
	char	   *host = rk_query_value(psprintf("SELECT host FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
									  1, (Oid[]) {TEXTOID}, &name);
	char	   *port = rk_query_value(psprintf("SELECT port FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
									  1, (Oid[]) {TEXTOID}, &name);
	char	   *role = rk_registry_replication_role();
	const char *params[3] = {force ? "true" : "false", dry_run ? "true" : "false",
	planned ? "true" : "false"};
	RkCall		call;
	RkFailoverAnswer answer;

	if (role == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no replication role is set up"),
				 errhint("Run rk_create_replicator() on the primary.")));
	rk_call_init(&call, host, atoi(port), rk_peer_user(role), self,
				 psprintf("SELECT * FROM %s.rk_peer_failover($1::boolean, $2::boolean, $3::boolean)",
						  quote_identifier(rk_schema())), 3, params);
	rk_calls_run(&call, 1, RK_REMOTE_FAILOVER_MS);
	if (!rk_answer_failover(&call, &answer))
		rk_call_report(&call, ERROR, psprintf("could not reach node \"%s\"", target));
	rk_calls_clear(&call, 1);
	*result = answer.result;
	*forced_loss = answer.forced_loss;
	return answer.ok;
}

/*
 * Carry the request to another node's worker.  Called on the primary, this
 * session would be cut off by the old primary's own restart as a standby
 * before the answer arrives: the worker waits while it is marked here
 * (rejoin.c).
 */
static bool
remote_failover(const char *self, const char *target, bool force, bool dry_run, bool planned,
				char **result, bool *forced_loss)
{
	bool		ok;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->switchover_caller = MyProcPid;
	LWLockRelease(rk_shared->lock);
	PG_TRY();
	{
		ok = remote_failover_call(self, target, force, dry_run, planned, result, forced_loss);
	}
	PG_FINALLY();
	{
		LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
		if (rk_shared->switchover_caller == MyProcPid)
			rk_shared->switchover_caller = 0;
		if (rk_shared->worker_latch)
			SetLatch(rk_shared->worker_latch);
		LWLockRelease(rk_shared->lock);
	}
	PG_END_TRY();
	return ok;
}

/* rk_failover(target, force, dry_run) */
Datum
rk_failover(PG_FUNCTION_ARGS)
{
	char	   *target = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		force = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	bool		dry_run = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);

	rk_require_superuser("rk_failover");
	PG_RETURN_TEXT_P(cstring_to_text(request_failover("rk_failover", target, force, dry_run, false)));
}

/* rk_switchover(target): refused unless the primary is reachable. */
Datum
rk_switchover(PG_FUNCTION_ARGS)
{
	char	   *target = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));

	rk_require_superuser("rk_switchover");
	PG_RETURN_TEXT_P(cstring_to_text(request_failover("rk_switchover", target, true, false, true)));
}

/*
 * rk_rejoin(): on an old primary that another node replaced, rewind and
 * restart it as that node's standby now (what auto_rejoin does by itself).
 */
Datum
rk_rejoin(PG_FUNCTION_ARGS)
{
	bool		fenced;
	bool		pending;
	char		primary[NAMEDATALEN];

	rk_require_superuser("rk_rejoin");
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	fenced = pg_atomic_read_u32(&rk_shared->fenced) != 0;
	pending = rk_shared->state.rejoin_pending || rk_shared->diverged;
	strlcpy(primary, rk_shared->state.primary_name, NAMEDATALEN);
	if ((!RecoveryInProgress() && fenced) || (RecoveryInProgress() && pending))
	{
		rk_shared->rejoin_requested = true;
		if (rk_shared->worker_latch)
			SetLatch(rk_shared->worker_latch);
	}
	LWLockRelease(rk_shared->lock);

	if (!RecoveryInProgress() && !fenced)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is the primary and not fenced: there is nothing to rejoin"),
				 errhint("rk_rejoin() is for an old primary that another node replaced.")));
	if (RecoveryInProgress() && !pending)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is already a standby: there is nothing to rejoin"),
				 errhint("rk_status() shows whom it follows.")));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("rejoining: this node will %s as a standby of %s",
											  RecoveryInProgress() ? "rewind if needed and restart" : "shut down, rewind and restart",
											  primary[0] ? primary : "the new primary")));
}

/*
 * rk_conninfo(purpose, dbname, user_name): the libpq multi-host string an
 * application uses, built from the registry.  'write' lists the primary
 * first and asks for a read-write session; 'read' lists the standbys first
 * and prefers a standby.  Both carry a connect timeout and keepalives, so
 * that a dead or hung host is passed by quickly: after a failover the
 * application finds the new primary with no change and no restart.
 */
Datum
rk_conninfo(PG_FUNCTION_ARGS)
{
	char	   *purpose = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *dbname = PG_ARGISNULL(1) ? get_database_name(MyDatabaseId) : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *user = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	bool		write;
	char	   *hosts;
	char	   *ports;
	StringInfoData buf;

	rk_require_superuser("rk_conninfo");
	if (purpose == NULL || (strcmp(purpose, "write") != 0 && strcmp(purpose, "read") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid purpose \"%s\"", purpose ? purpose : "NULL"),
				 errdetail("The purpose is 'write' (the primary) or 'read' (standbys first).")));
	write = strcmp(purpose, "write") == 0;
	if (dbname[0] == '\0' || strpbrk(dbname, " '\\\n\r=") != NULL ||
		(user != NULL && (user[0] == '\0' || strpbrk(user, " '\\\n\r=") != NULL)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid database or user name for a connection string"),
				 errdetail("Names with spaces, quotes, backslashes or '=' are not accepted here.")));

	hosts = rk_query_value(psprintf("SELECT string_agg(host, ',' ORDER BY (role = 'primary') %s, node_id) FROM %s",
									write ? "DESC" : "ASC", rk_table("rk_nodes")), 0, NULL, NULL);
	ports = rk_query_value(psprintf("SELECT string_agg(port::text, ',' ORDER BY (role = 'primary') %s, node_id) FROM %s",
									write ? "DESC" : "ASC", rk_table("rk_nodes")), 0, NULL, NULL);
	if (hosts == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no node is registered"),
				 errhint("Run rk_setup_primary() first.")));

	initStringInfo(&buf);
	rk_conninfo_append(&buf, "host", hosts);
	rk_conninfo_append(&buf, "port", ports);
	rk_conninfo_append(&buf, "dbname", dbname);
	if (user)
		rk_conninfo_append(&buf, "user", user);
	rk_conninfo_append(&buf, "target_session_attrs", write ? "read-write" : "prefer-standby");
	rk_conninfo_append(&buf, "connect_timeout", "2");
	rk_conninfo_append(&buf, "keepalives", "1");
	rk_conninfo_append(&buf, "keepalives_idle", "5");
	rk_conninfo_append(&buf, "keepalives_interval", "2");
	rk_conninfo_append(&buf, "keepalives_count", "2");
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}
