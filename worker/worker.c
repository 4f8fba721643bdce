/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The replication_kit background worker, one on every node.  It starts
 *		when the server reaches a consistent state (so it runs on standbys
 *		too) and connects to replication_kit.database.  Every probe interval
 *		it reads the registry, asks every other node for its state (in
 *		parallel, under one deadline), derives one event from what it saw,
 *		and hands it to the state machine (fsm.c).
 *
 * What a standby watches: contact with the primary, either a probe that
 * reached it, WAL from it, or the primary's own call.  What a primary
 * watches: how many nodes answer it as their primary, which renews the
 * lease its commits need, and whether a newer term has someone else.
 *
 * The loop is the standard one: wait on the latch with a timeout and
 * postmaster-death exit, reset, check for interrupts (SIGTERM ends the
 * worker at once, even in the middle of a round of probes), reload the
 * configuration on SIGHUP.  Any ERROR ends the worker and the postmaster
 * starts it again a second later.  Nothing it knew only in memory is
 * trusted after that: a restarted worker begins in IDLE and gives the
 * primary a full failover_timeout from its start before it elects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/walreceiver.h"
#include "storage/spin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "core/credentials.h"
#include "core/local.h"
#include "core/peer.h"
#include "core/registry.h"
#include "core/upstream.h"
#include "worker/fsm.h"
#include "worker/worker.h"

/* Register the worker; called from _PG_init in the postmaster. */
void
rk_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, RK_EXTENSION_NAME);
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rk_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "replication_kit worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "replication_kit worker");
	RegisterBackgroundWorker(&worker);
}

/* Forget the worker in shared memory when it exits, however it exits. */
static void
worker_detach(int code, Datum arg)
{
	/* An ERROR may have left rk_shared->lock held: this runs before ProcKill releases it. */
	LWLockReleaseAll();
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->worker_pid = 0;
	rk_shared->worker_latch = NULL;
	strlcpy(rk_shared->worker_state, "stopped", sizeof(rk_shared->worker_state));
	LWLockRelease(rk_shared->lock);
}

/*
 * Keep what earlier rounds learned (the last probe) about peers that are
 * still registered at the same address; the registry's own columns win.
 */
static void
carry_over_probes(RkView *v)
{
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	for (int i = 0; i < v->npeers; i++)
	{
		for (int j = 0; j < rk_shared->npeers; j++)
		{
			RkPeer	   *old = &rk_shared->peers[j];
			RkPeer	   *p = &v->peers[i];

			if (strcmp(old->name, p->name) == 0 && strcmp(old->host, p->host) == 0 && old->port == p->port)
			{
				RkPeer		fresh = *p;

				*p = *old;
				p->registry_primary = fresh.registry_primary;
				p->sync = fresh.sync;
				p->joined = fresh.joined;
				p->priority = fresh.priority;
				p->is_self = fresh.is_self;
			}
		}
	}
	LWLockRelease(rk_shared->lock);
}

/*
 * Read the registry into the view and shared memory.  Returns false if the
 * extension is not (yet) created in this database: on a standby it appears
 * when the primary's CREATE EXTENSION is replayed.
 */
static bool
read_registry(RkView *v)
{
	int			ret;
	char	   *self;
	bool		v16;

	if (!OidIsValid(get_extension_oid(RK_EXTENSION_NAME, true)))
		return false;
	/* Until ALTER EXTENSION ... UPDATE: no priorities and no pauses. */
	v16 = rk_extension_at_least("1.6");

	self = rk_self_name();
	strlcpy(v->self, self ? self : "", NAMEDATALEN);
	v->self_idx = -1;
	v->npeers = 0;
	v->members = 0;

	SPI_connect();
	ret = SPI_execute(psprintf("SELECT node_name, host, port, role = 'primary', sync, joined_at IS NOT NULL, %s "
							   "FROM %s ORDER BY node_id", v16 ? "priority" : "100", rk_table("rk_nodes")),
					  true, RK_MAX_NODES);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the registry: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RkPeer	   *p = &v->peers[v->npeers];
		bool		isnull;

		memset(p, 0, sizeof(RkPeer));
		strlcpy(p->name, SPI_getvalue(tup, desc, 1), NAMEDATALEN);
		strlcpy(p->host, SPI_getvalue(tup, desc, 2), RK_HOST_LEN);
		p->port = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		p->registry_primary = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		p->sync = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		p->joined = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull)) || p->registry_primary;
		p->priority = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
		p->is_self = self != NULL && strcmp(self, p->name) == 0;
		if (p->is_self)
			v->self_idx = v->npeers;
		if (p->joined)
			v->members++;
		v->npeers++;
	}
	strlcpy(v->method, "FIRST", sizeof(v->method));
	v->num_sync = 0;
	v->repl_role[0] = '\0';
	v->pause_id = 0;
	v->pause_set = false;
	v->paused_since[0] = '\0';
	v->pause_reason[0] = '\0';
	ret = SPI_execute(psprintf("SELECT sync_method, num_sync, coalesce(replication_role, ''), %s FROM %s",
							   v16 ? "pause_id, paused_at IS NOT NULL, coalesce(paused_at::text, ''), "
							   "coalesce(paused_reason, '')" : "0::bigint, false, '', ''",
							   rk_table("rk_cluster")), true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		strlcpy(v->method, SPI_getvalue(tup, desc, 1), sizeof(v->method));
		v->num_sync = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		strlcpy(v->repl_role, SPI_getvalue(tup, desc, 3), NAMEDATALEN);
		v->pause_id = (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		v->pause_set = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		strlcpy(v->paused_since, SPI_getvalue(tup, desc, 6), sizeof(v->paused_since));
		strlcpy(v->pause_reason, SPI_getvalue(tup, desc, 7), sizeof(v->pause_reason));
	}
	SPI_finish();

	v->majority = v->members / 2 + 1;
	/* The same schema on every node: the catalog is the primary's. */
	strlcpy(v->schema, rk_schema(), sizeof(v->schema));
	strlcpy(v->schema_q, quote_identifier(v->schema), sizeof(v->schema_q));

	carry_over_probes(v);
	return true;
}

/*
 * The primary marks standbys as joined once they stream and answer its
 * probes as standbys: from then on they count in majorities.  A standby
 * registered but not cloned yet (or whose pg_basebackup is still copying,
 * which streams under the same name) must not be able to fence the primary
 * by its absence.
 */
static void
mark_joined(RkView *v)
{
	int			ret;
	StringInfoData names;

	initStringInfo(&names);
	for (int i = 0; i < v->npeers; i++)
		if (!v->peers[i].is_self && !v->peers[i].joined && v->peers[i].reachable && v->peers[i].in_recovery)
			appendStringInfo(&names, "%s%s", names.len ? "," : "", quote_literal_cstr(v->peers[i].name));
	if (names.len == 0)
		return;

	SPI_connect();
	ret = SPI_execute(psprintf("UPDATE %s SET joined_at = now() WHERE joined_at IS NULL AND node_name IN (%s) "
							   "AND node_name IN (SELECT application_name FROM pg_catalog.pg_stat_replication "
							   "WHERE state = 'streaming') RETURNING node_name", rk_table("rk_nodes"), names.data),
					  false, 0);
	if (ret == SPI_OK_UPDATE_RETURNING)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
			rk_journal(v, "standby_joined", SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
					   "streams now and counts for a majority");
	}
	SPI_finish();
}

/*
 * A standby whose slot lost its WAL stays reported in rk_status() until it
 * streams again, which takes a fresh clone; this notes that it does.
 */
static void
note_resynced(RkView *v)
{
	const char *events = rk_table("rk_events");

	SPI_connect();
	if (SPI_execute(psprintf("SELECT e.node_name FROM %s e WHERE e.kind = 'slot_lost' "
							 "AND e.event_id = (SELECT max(l.event_id) FROM %s l WHERE l.node_name = e.node_name "
							 "AND l.kind IN ('slot_lost', 'resynced')) "
							 "AND e.node_name IN (SELECT application_name FROM pg_catalog.pg_stat_replication "
							 "WHERE state = 'streaming')", events, events),
					true, 0) == SPI_OK_SELECT)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			/* A running standby, not the clone's pg_basebackup streaming under its name. */
			for (int j = 0; j < v->npeers; j++)
				if (strcmp(v->peers[j].name, name) == 0 && v->peers[j].reachable && v->peers[j].in_recovery)
					rk_journal(v, "resynced", name, "streams again through its new slot");
		}
	}
	SPI_finish();
}

/*
 * Say so when the timing settings work against each other.  The fence is
 * always safe (its effective length is capped below failover_timeout), but
 * a lease no longer than one probe round plus a hung standby's probe
 * timeout lapses between rounds, and the primary then refuses commits
 * while a majority is healthy.
 */
static void
check_timing(void)
{
	int			round_ms = rk_probe_interval_ms + rk_probe_timeout_ms;

	if (rk_effective_fence_ms() <= round_ms)
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(RK_LOG_PREFIX "the commit lease (%d ms) is not longer than a probe round with a hung node (%d ms)",
						rk_effective_fence_ms(), round_ms),
				 errdetail("A standby that hangs can make this primary refuse commits between probe rounds."),
				 errhint("Keep replication_kit.probe_interval + replication_kit.probe_timeout below "
						 "replication_kit.fence_timeout, and fence_timeout at most failover_timeout - probe_interval.")));
}

/*
 * A simulated partition (replication_kit.simulate_partition, for tests)
 * cuts replication too: new connections from the nodes on the other side
 * are refused (rk_replication_gate), and the ones already streaming are
 * ended here.
 */
static void
cut_partitioned_walsenders(RkView *v)
{
	Oid			types[1] = {TEXTOID};

	if (rk_simulate_partition == NULL || rk_simulate_partition[0] == '\0')
		return;
	SPI_connect();
	for (int i = 0; i < v->npeers; i++)
	{
		Datum		vals[1];

		if (v->peers[i].is_self || !rk_partitioned_from(v->peers[i].name))
			continue;
		vals[0] = CStringGetTextDatum(v->peers[i].name);
		SPI_execute_with_args("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_replication "
							  "WHERE application_name = $1", 1, types, vals, NULL, false, 0);
	}
	SPI_finish();
}

/*
 * A primary in good standing renews its lease as soon as a majority has
 * answered, not when the round ends: a standby that hangs holds the round
 * for probe_timeout, and renewing only after it would leave a gap between
 * one lease and the next.  Only plain support counts here (a joined
 * standby in no newer term); anything else waits for the round's verdict.
 */
typedef struct EarlyRenewal
{
	RkView	   *v;
	int			support;
} EarlyRenewal;

static void
count_support(RkCall *c, void *arg)
{
	EarlyRenewal *er = (EarlyRenewal *) arg;
	RkPeer	   *p = &er->v->peers[c->peer_index];
	RkStateAnswer a;

	if (!p->joined || !rk_answer_state(c, &a) || !a.in_recovery || a.term > er->v->st.term ||
		strcmp(a.primary_name, er->v->self) != 0)
		return;

	/*
	 * A supporter that elects sooner than the lease would last bounds it
	 * now, not only once the round is over (combine_timing): the lease
	 * granted below already respects it.
	 */
	if (a.failover_timeout_ms > 0)
	{
		uint64		known = pg_atomic_read_u64(&rk_shared->cluster_min_failover_ms);

		if (known == 0)
			known = (uint64) rk_failover_timeout_ms;
		if (a.failover_timeout_ms < known)
			pg_atomic_write_u64(&rk_shared->cluster_min_failover_ms, a.failover_timeout_ms);
	}
	if (++er->support == er->v->majority)
		rk_extend_lease(er->v->mono);
}

/*
 * The timing settings are per node.  From what the others last said of
 * theirs, keep the smallest failover_timeout (it bounds the lease here:
 * rk_effective_fence_ms) and the longest lease (it bounds how soon this
 * node votes: rk_vote_wait_ms), and say so loudly when they differ.
 */
static void
combine_timing(RkView *v)
{
	static int64 warned_min = -1;
	static int64 warned_max = -1;
	int64		min_failover = rk_failover_timeout_ms;
	int64		max_lease = 0;
	const char *min_node = v->self;
	const char *max_node = v->self;

	for (int i = 0; i < v->npeers; i++)
	{
		RkPeer	   *p = &v->peers[i];

		if (p->is_self || p->failover_timeout_ms <= 0)
			continue;
		if (p->failover_timeout_ms < min_failover)
		{
			min_failover = p->failover_timeout_ms;
			min_node = p->name;
		}
		if (p->lease_ms > max_lease)
		{
			max_lease = p->lease_ms;
			max_node = p->name;
		}
	}
	pg_atomic_write_u64(&rk_shared->cluster_min_failover_ms, (uint64) min_failover);
	pg_atomic_write_u64(&rk_shared->cluster_max_lease_ms, (uint64) max_lease);

	rk_cap_lease(v->mono);
	if (min_failover < rk_failover_timeout_ms && min_failover != warned_min)
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(RK_LOG_PREFIX "%s has failover_timeout = %lld ms, this node %d ms: the lease here is now %d ms",
						min_node, (long long) min_failover, rk_failover_timeout_ms, rk_effective_fence_ms()),
				 errhint("Set the same replication_kit timing settings on every node.")));
	if (max_lease > rk_effective_fence_ms() && max_lease != warned_max)
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(RK_LOG_PREFIX "%s holds a lease of %lld ms, this node %d ms: this node waits that long before it votes",
						max_node, (long long) max_lease, rk_effective_fence_ms()),
				 errhint("Set the same replication_kit timing settings on every node.")));
	warned_min = min_failover;
	warned_max = max_lease;
}

/*
 * Drive a connection started with PQconnectStartParams to its end, waiting
 * on the latch and the socket so that SIGTERM stops the worker at once;
 * false on failure or at `deadline_ms` (monotonic).
 */
static bool
login_finishes(PGconn *conn, int64 deadline_ms)
{
	PostgresPollingStatusType poll = PGRES_POLLING_WRITING;

	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
		return false;
	while (poll != PGRES_POLLING_OK && poll != PGRES_POLLING_FAILED)
	{
		int64		left = deadline_ms - rk_monotonic_ms();

		if (left <= 0)
			return false;
		(void) WaitLatchOrSocket(MyLatch,
								 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH |
								 (poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE),
								 PQsocket(conn), (long) left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		poll = PQconnectPoll(conn);
	}
	return poll == PGRES_POLLING_OK;
}

/*
 * Does `password` log `role` in for replication at `up`?  Checked before a
 * password another node handed over replaces the one in the password file:
 * a node that lags, or one that is not what it claims, gets nothing
 * written; and to tell why a WAL receiver does not stream.  A NULL password
 * logs in as the WAL receiver does: PGPASSWORD if the server has one, else
 * the password file its primary_conninfo names.  On failure, what the
 * server said goes to `error` ("" when it said nothing in time).  Waits at
 * most `timeout_ms`, and SIGTERM ends the wait.
 */
static bool
password_works(RkPeer *up, const char *role, const char *password, int timeout_ms,
			   char *error, size_t errlen)
{
	char		port[16];
	char		timeout[16];
	const char *keys[] = {"host", "port", "user", "dbname", "replication",
		"connect_timeout", "sslmode", "channel_binding", "application_name", "passfile", "password", NULL};
	const char *vals[12];
	PGconn	   *conn;
	bool		ok;

	snprintf(port, sizeof(port), "%d", up->port);
	snprintf(timeout, sizeof(timeout), "%d", Max(1, timeout_ms / 1000));
	vals[0] = up->host;
	vals[1] = port;
	vals[2] = role;
	vals[3] = "replication";
	vals[4] = "true";
	vals[5] = timeout;
	vals[6] = rk_tls_sslmode();
	vals[7] = rk_tls_channel_binding(false);
	vals[8] = "replication_kit password check";
	vals[9] = psprintf("%s/%s", DataDir, RK_PASS_FILE);
	vals[10] = password;		/* NULL: none given, as in primary_conninfo */
	vals[11] = NULL;
	conn = PQconnectStartParams(keys, vals, 0);
	ok = login_finishes(conn, rk_monotonic_ms() + timeout_ms);
	if (!ok && error != NULL)
	{
		char	   *msg = conn ? PQerrorMessage(conn) : "out of memory";
		char	   *fatal = strstr(msg, "FATAL:");

		/*
		 * The server's words, on one line, without libpq's "connection to
		 * ..." prefix, and with no control character for a terminal that
		 * shows rk_status(): whoever answers on that address wrote them.
		 */
		strlcpy(error, fatal ? fatal : msg, errlen);
		for (unsigned char *c = (unsigned char *) error; *c; c++)
			if (*c < 0x20 || *c == 0x7f)
				*c = ' ';
	}
	PQfinish(conn);
	return ok;
}

/* What rk_status() says about this standby's WAL receiver login ("" clears it). */
static void
set_receiver_login(const char *text)
{
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	strlcpy(rk_shared->receiver_login, text, sizeof(rk_shared->receiver_login));
	LWLockRelease(rk_shared->lock);
}

/*
 * A standby that was down while the replication password changed has the
 * old one in its password file: its WAL receiver cannot log in, so it never
 * replays the change.  When it has not streamed for a while although its
 * upstream answers the node role's probes, it asks that node for the
 * current password (at most every RK_CREDENTIALS_ASK_MS) and takes it.
 */
static void
fetch_credentials(RkView *v)
{
	RkWorkerContext *ctx = v->ctx;
	RkPeer	   *up;
	RkCall		call;
	const char *params[1] = {v->self};
	const char *role;
	const char *password;

	if (!v->in_recovery || v->upstream_idx < 0 || rk_walreceiver_heard_ms() >= 0)
	{
		if (ctx->not_streaming_since != 0)
			set_receiver_login("");
		ctx->not_streaming_since = 0;
		return;
	}
	if (ctx->not_streaming_since == 0)
		ctx->not_streaming_since = v->mono;
	up = &v->peers[v->upstream_idx];
	if (up->is_self || !up->reachable)
		set_receiver_login("");
	if (v->mono - ctx->not_streaming_since < RK_CREDENTIALS_ASK_MS || up->is_self || !up->reachable ||
		strcmp(v->peer_user, RK_NODE_ROLE) != 0 ||
		(ctx->credentials_asked_ms != 0 && v->mono - ctx->credentials_asked_ms < RK_CREDENTIALS_ASK_MS))
		return;
	ctx->credentials_asked_ms = v->mono;

	/*
	 * Can the WAL receiver log in at all?  Its login is tried the way it
	 * logs in (the replication role, the same password), so that
	 * rk_status() says why this standby does not stream, rather than only
	 * the server log.  Within a probe's timeout: the upstream just answered.
	 */
	{
		char		error[RK_REASON_LEN];

		if (password_works(up, v->repl_role, NULL, rk_probe_timeout_ms, error, sizeof(error)))
			set_receiver_login("");
		else if (error[0] != '\0')
		{
			char		text[RK_REASON_LEN];

			snprintf(text, sizeof(text), "the WAL receiver cannot log in to %s as \"%s\": %s",
					 up->name, v->repl_role, error);
			set_receiver_login(text);
		}
	}

	rk_call_init(&call, up->host, up->port, v->peer_user, v->self,
				 psprintf("SELECT * FROM %s.rk_peer_credentials($1)", v->schema_q), 1, params);
	rk_calls_run(&call, 1, rk_probe_timeout_ms);
	role = call.phase == RK_CALL_DONE ? rk_call_value(&call, "role") : NULL;
	password = call.phase == RK_CALL_DONE ? rk_call_value(&call, "password") : NULL;
	if (role != NULL && password != NULL && !password_works(up, role, password, 3000, NULL, 0))
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "the replication password %s handed over does not log in there; not taken",
						up->name)));
	else if (role != NULL && password != NULL)
	{
		bool		started = rk_xact_begin();
		bool		changed = rk_credentials_take(role, password);

		rk_xact_end(started);
		if (changed)
			ereport(LOG,
					(errmsg(RK_LOG_PREFIX "not streaming for %ld ms: took the current password of \"%s\" from %s",
							(long) (v->mono - ctx->not_streaming_since), role, up->name)));
	}
	else if (call.phase != RK_CALL_DONE)
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "could not ask %s for the replication password: %s", up->name, call.error)));
	rk_calls_clear(&call, 1);
}

/*
 * Hand the node role's secret to the nodes that said they lack it (a fresh
 * clone: no base backup carries it).  Only a node that has the valid
 * secret, and so logged in as the node role, can; the receiver checks it
 * against the role's verifier before it keeps it.
 */
static void
give_secret(RkView *v)
{
	RkCall		calls[RK_MAX_NODES];
	int			ncalls = 0;
	char	   *secret;
	const char *params[1];

	if (!rk_shared->node_secret_ok || strcmp(v->peer_user, RK_NODE_ROLE) != 0)
		return;
	secret = rk_node_secret();
	if (secret == NULL)
		return;
	params[0] = secret;
	for (int i = 0; i < v->npeers; i++)
	{
		RkPeer	   *p = &v->peers[i];

		if (p->is_self || !p->reachable || !p->needs_secret)
			continue;
		rk_call_init(&calls[ncalls], p->host, p->port, v->peer_user, v->self,
					 psprintf("SELECT %s.rk_peer_secret($1)", v->schema_q), 1, params);
		calls[ncalls].peer_index = i;
		ncalls++;
	}
	if (ncalls > 0)
	{
		rk_calls_run(calls, ncalls, rk_probe_timeout_ms);
		for (int c = 0; c < ncalls; c++)
		{
			RkPeer	   *p = &v->peers[calls[c].peer_index];

			if (calls[c].phase == RK_CALL_DONE && calls[c].res != NULL && PQntuples(calls[c].res) == 1)
			{
				p->needs_secret = false;
				ereport(LOG,
						(errmsg(RK_LOG_PREFIX "gave the node role's secret to %s", p->name)));
			}
			else
				ereport(LOG,
						(errmsg(RK_LOG_PREFIX "could not give the node role's secret to %s: %s",
								p->name, calls[c].error)));
		}
		rk_calls_clear(calls, ncalls);
	}
	memset(secret, 0, strlen(secret));
}

/*
 * One round of rk_peer_state() calls to every other registered node.  The
 * primary's calls tell the standbys it is alive.  `renew` says this node
 * is a primary holding its lease.
 */
static void
probe_peers(RkView *v, bool renew)
{
	EarlyRenewal er = {v, 1};

	RkCall		calls[RK_MAX_NODES];
	int			ncalls = 0;
	char		term[32];
	const char *params[3];

	snprintf(term, sizeof(term), UINT64_FORMAT, v->st.term);
	params[0] = v->self;
	params[1] = term;
	/* Only a primary in a term it won, not fenced, is contact with the primary. */
	params[2] = !v->in_recovery && rk_state_elected(&v->st) &&
		pg_atomic_read_u32(&rk_shared->fenced) == 0 ? "true" : "false";

	for (int i = 0; i < v->npeers; i++)
	{
		RkPeer	   *p = &v->peers[i];

		if (p->is_self)
			continue;
		p->last_attempt = v->now;
		if (rk_partitioned_from(p->name))
		{
			p->reachable = false;
			strlcpy(p->error, "cut off by replication_kit.simulate_partition", RK_REASON_LEN);
			continue;
		}
		rk_call_init(&calls[ncalls], p->host, p->port, v->peer_user, v->self,
					 psprintf("SELECT * FROM %s.rk_peer_state($1, $2::bigint, $3::boolean)", v->schema_q),
					 3, params);
		calls[ncalls].peer_index = i;
		ncalls++;
	}
	if (ncalls == 0)
		return;

	pgstat_report_activity(STATE_RUNNING, "probing the other nodes");
	rk_calls_run_notify(calls, ncalls, rk_probe_timeout_ms, renew ? count_support : NULL, &er);

	for (int c = 0; c < ncalls; c++)
	{
		RkPeer	   *p = &v->peers[calls[c].peer_index];
		RkStateAnswer a;

		p->reachable = rk_answer_state(&calls[c], &a);
		if (!p->reachable)
		{
			pg_atomic_fetch_add_u64(&rk_shared->n_probe_errors, 1);
			strlcpy(p->error, calls[c].error, RK_REASON_LEN);
			continue;
		}
		p->error[0] = '\0';
		p->last_ok = v->now;
		p->in_recovery = a.in_recovery;
		p->timeline = a.timeline;
		p->own_timeline = a.own_timeline;
		p->pause_state = a.pause_state;
		p->pause_id = a.pause_id;
		p->lsn = a.lsn;
		p->term = a.term;
		/*
		 * A winner being promoted names itself.  It is no primary to follow
		 * or rewind from yet, and it may still lose the term: only the
		 * pre-vote's wait (promotion_elsewhere) uses that.
		 */
		p->promoting = a.in_recovery && strcmp(a.primary_name, p->name) == 0;
		strlcpy(p->primary_name, p->promoting ? "" : a.primary_name, NAMEDATALEN);
		strlcpy(p->voted_for, a.voted_for, NAMEDATALEN);
		p->silence_ms = a.silence_ms;
		p->fenced = a.fenced;
		p->needs_secret = a.needs_secret;
		p->failover_timeout_ms = (int64) a.failover_timeout_ms;
		p->lease_ms = (int64) a.lease_ms;
	}
	rk_calls_clear(calls, ncalls);
	combine_timing(v);
	give_secret(v);
}

/* Adopt a newer term seen anywhere; terms only ever grow. */
static void
adopt_term(RkView *v, uint64 term, const char *primary)
{
	RkNodeState st;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	st = rk_shared->state;
	if (term > st.term || (term == st.term && primary && strcmp(st.primary_name, primary) != 0))
	{
		if (term > st.term)
		{
			st.voted_for[0] = '\0';
			st.voted_term = 0;
		}
		/*
		 * A primary that still holds its term and sees a higher one that
		 * nobody won (a standby's failed election) stays the primary of it:
		 * no candidate can win while this primary's probes keep the voters in
		 * contact, so the win carries over.
		 */
		if (primary && strcmp(primary, v->self) == 0 && rk_state_elected(&st) &&
			pg_atomic_read_u32(&rk_shared->fenced) == 0)
			st.won_term = term;
		st.term = term;
		strlcpy(st.primary_name, primary ? primary : "", NAMEDATALEN);
		rk_state_save_locked(&st);
	}
	v->st = rk_shared->state;
	LWLockRelease(rk_shared->lock);
}

/*
 * Is primary_slot_name this node's own slot?  A standby that caught up
 * from another standby (election.c, in_place_of) streamed without one; once
 * it follows a primary again it must stream through its slot, or the
 * primary keeps no WAL for it.
 */
static bool
streams_through_own_slot(RkView *v)
{
	const char *slot = GetConfigOption("primary_slot_name", true, false);

	return slot != NULL && strcmp(slot, v->self) == 0;
}

/* A standby's round: who is the primary, and did we hear from it? */
static RkEvent
standby_event(RkView *v)
{
	int			newest = -1;

	/* The primary is whoever reports being one in the newest term. */
	for (int i = 0; i < v->npeers; i++)
	{
		RkPeer	   *p = &v->peers[i];

		if (p->is_self || !p->reachable || p->in_recovery || p->fenced)
			continue;
		if (newest < 0 || p->term > v->peers[newest].term)
			newest = i;
	}

	v->upstream_idx = rk_upstream_index(v);
	if (newest >= 0 && v->peers[newest].term >= v->st.term)
	{
		v->primary_idx = newest;
		v->contact = true;
		adopt_term(v, v->peers[newest].term, v->peers[newest].name);
	}
	else
	{
		v->primary_idx = -1;
		for (int i = 0; i < v->npeers; i++)
		{
			if (v->st.primary_name[0] ? strcmp(v->peers[i].name, v->st.primary_name) == 0
				: v->peers[i].registry_primary)
				v->primary_idx = i;
		}
		v->contact = false;
	}

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	if (v->contact)
	{
		rk_shared->last_seen_primary = Max(rk_shared->last_seen_primary, v->now);
		rk_shared->last_seen_primary_ms = Max(rk_shared->last_seen_primary_ms, v->mono);
	}
	v->silence_ms = (long) Max(0, v->mono - rk_shared->last_seen_primary_ms);
	LWLockRelease(rk_shared->lock);

	/* Re-read: a call from the primary may have told us more than our probes. */
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	v->st = rk_shared->state;
	LWLockRelease(rk_shared->lock);
	if (v->primary_idx < 0 || (v->st.primary_name[0] &&
							   strcmp(v->peers[v->primary_idx].name, v->st.primary_name) != 0))
	{
		for (int i = 0; i < v->npeers; i++)
			if (v->st.primary_name[0] && strcmp(v->peers[i].name, v->st.primary_name) == 0)
				v->primary_idx = i;
	}

	/*
	 * Re-point only to a primary confirmed in the current term: one that
	 * answered this round as the primary of the newest term, or that told
	 * this node so itself (st.primary_name, cleared when a new term begins).
	 * The registry's primary of an older term is no one to follow.
	 */
	if (v->primary_idx >= 0 && !v->peers[v->primary_idx].is_self &&
		(v->primary_idx != v->upstream_idx || !streams_through_own_slot(v)) &&
		v->silence_ms < rk_failover_timeout_ms &&
		(v->contact || strcmp(v->peers[v->primary_idx].name, v->st.primary_name) == 0))
	{
		snprintf(v->why, sizeof(v->why), "%s is the primary in term " UINT64_FORMAT,
				 v->peers[v->primary_idx].name, v->st.term);
		return RK_EV_NEW_PRIMARY;
	}
	if (v->silence_ms < rk_probe_interval_ms + rk_probe_timeout_ms || v->contact)
		return RK_EV_PRIMARY_SEEN;
	/* Its own failover_timeout, and no less than the longest lease heard of. */
	if (v->silence_ms < rk_vote_wait_ms(true))
		return RK_EV_PRIMARY_SILENT;
	return RK_EV_PRIMARY_DEAD;
}

/*
 * Does this standby fail to follow its primary onto a newer timeline?  It
 * has contact and streams from it, and the primary's timeline forked off
 * this node's before the point this node replayed (it got WAL from the old
 * primary that the new one never had): decided from the timeline history
 * at once (rk_fork_state).  While the history is not here yet, or if it
 * says the node can follow but the node still does not after a grace
 * period, it is treated as diverged too: a rewind is the way out.
 */
static bool
diverged(RkView *v)
{
	int64	   *since = &v->ctx->diverged_since;
	TimeLineID	rcv_tli = 0;
	TimeLineID	replay_tli;
	RkPeer	   *p;
	char		why[RK_REASON_LEN];

	if (v->primary_idx < 0 || v->primary_idx != v->upstream_idx)
	{
		*since = 0;
		return false;
	}
	p = &v->peers[v->primary_idx];
	(void) GetWalRcvFlushRecPtr(NULL, &rcv_tli);
	(void) GetXLogReplayRecPtr(&replay_tli);
	/*
	 * On the timeline of its own unelected promotion, no primary's timeline
	 * can be followed, whatever its number says (another node's promotion
	 * may have reused the number): only a rewind brings it back.
	 */
	if (p->reachable && rk_on_own_unelected_timeline(v))
	{
		snprintf(v->why, sizeof(v->why), "this node is on timeline %u of its own unelected promotion, %s on timeline %u",
				 replay_tli, p->name, p->timeline);
		return true;
	}
	if (!p->reachable || p->timeline <= Max(rcv_tli, replay_tli))
	{
		*since = 0;
		return false;
	}
	if (rk_fork_state(p->timeline, why, sizeof(why)) == RK_FORK_DIVERGED)
	{
		snprintf(v->why, sizeof(v->why), "%s is on timeline %u: %s", p->name, p->timeline, why);
		return true;
	}
	if (*since == 0)
		*since = v->mono;
	if (v->mono - *since < RK_DIVERGED_GRACE_MS)
		return false;
	snprintf(v->why, sizeof(v->why), "%s is on timeline %u, this node stays on %u",
			 p->name, p->timeline, Max(rcv_tli, replay_tli));
	return true;
}

/* A primary's round: who still answers us as their primary? */
static RkEvent
primary_event(RkView *v)
{
	uint64		max_term = v->st.term;
	int			deposer = -1;

	v->support = 1;
	v->deposed = pg_atomic_read_u32(&rk_shared->fenced) != 0 || !rk_state_elected(&v->st);
	v->primary_idx = v->self_idx;
	for (int i = 0; i < v->npeers; i++)
	{
		RkPeer	   *p = &v->peers[i];

		if (p->is_self || !p->reachable)
			continue;
		if (p->term > v->st.term &&
			(!p->in_recovery ||
			 (p->primary_name[0] && strcmp(p->primary_name, v->self) != 0) ||
			 (p->voted_for[0] && strcmp(p->voted_for, v->self) != 0)))
		{
			v->deposed = true;
			if (deposer < 0 || p->term > v->peers[deposer].term)
				deposer = i;
			snprintf(v->why, sizeof(v->why), "%s reports term " UINT64_FORMAT " with %s",
					 p->name, p->term,
					 !p->in_recovery ? "itself as primary" :
					 p->primary_name[0] ? p->primary_name : p->voted_for);
		}
		max_term = Max(max_term, p->term);
		if (p->in_recovery && p->joined && p->term <= Max(v->st.term, max_term) &&
			strcmp(p->primary_name, v->self) == 0)
			v->support++;
	}
	if (v->deposed)
	{
		pg_atomic_write_u32(&rk_shared->fenced, 1);
		/*
		 * Learned from our own probes, the deposal goes to disk too, as it
		 * does when another node's call tells us: the newer term and the
		 * primary it names, after standby.signal (rk_state_save_locked).
		 * Otherwise a restart, even one without the kit, would bring this
		 * node back as a writable primary, and it would never learn whom
		 * to follow.  Only when the newer term names its primary: a term
		 * nobody has won yet is left to the election.
		 */
		if (deposer >= 0)
		{
			RkPeer	   *p = &v->peers[deposer];
			const char *primary = !p->in_recovery ? p->name : p->primary_name;

			if (primary[0] && strcmp(primary, v->self) != 0)
				adopt_term(v, p->term, primary);
		}
		return RK_EV_DEPOSED;
	}
	/* A standby's failed election raised the term; we are still the primary. */
	if (max_term > v->st.term)
		adopt_term(v, max_term, v->self);

	if (v->support >= v->majority)
		return RK_EV_MAJORITY_OK;
	snprintf(v->why, sizeof(v->why), "%d of %d nodes answer, %d needed",
			 v->support, v->members, v->majority);
	if (v->members >= 2 &&
		v->mono >= (int64) pg_atomic_read_u64(&rk_shared->lease_until))
		return RK_EV_MAJORITY_LOST;
	return RK_EV_LEASE_RUNNING;
}

/* Publish the round's view for rk_status() and rk_peer_view(). */
static void
publish(RkView *v, RkState state)
{
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	memcpy(rk_shared->peers, v->peers, sizeof(RkPeer) * v->npeers);
	rk_shared->npeers = v->npeers;
	strlcpy(rk_shared->policy_method, v->method, sizeof(rk_shared->policy_method));
	rk_shared->policy_num_sync = v->num_sync;
	rk_shared->registry_seen = true;
	strlcpy(rk_shared->worker_state, rk_state_name(state), sizeof(rk_shared->worker_state));
	if (state == RK_STATE_PRIMARY || state == RK_STATE_FOLLOWING)
		rk_shared->readiness[0] = '\0';
	LWLockRelease(rk_shared->lock);
}

/*
 * Remember the cluster (its size, the other nodes' addresses, the role to
 * reach them as) for the next start: the commit guard and the fence at
 * start run before the registry can be read.
 */
static void
record_members(RkView *v)
{
	RkNodeState st;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	st = rk_shared->state;
	st.members = v->members;
	strlcpy(st.repl_role, v->repl_role, NAMEDATALEN);
	/* A schema whose name is not one word is left to the search_path. */
	strlcpy(st.schema, v->schema, NAMEDATALEN);
	for (const char *p = v->schema; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == 0x7f || *p == '#')
			st.schema[0] = '\0';
	st.npeers = 0;
	for (int i = 0; i < v->npeers; i++)
	{
		if (v->peers[i].is_self)
			continue;
		strlcpy(st.peer_name[st.npeers], v->peers[i].name, NAMEDATALEN);
		strlcpy(st.peer_host[st.npeers], v->peers[i].host, RK_HOST_LEN);
		st.peer_port[st.npeers] = v->peers[i].port;
		st.npeers++;
	}
	/* In a cluster of several, no node commits without a lease it won. */
	if (v->members >= 2)
		pg_atomic_write_u32(&rk_shared->guard_enforced, 1);
	for (int i = st.npeers; i < RK_MAX_NODES; i++)
	{
		st.peer_name[i][0] = '\0';
		st.peer_host[i][0] = '\0';
		st.peer_port[i] = 0;
	}
	rk_state_save_locked(&st);
	v->st = rk_shared->state;
	LWLockRelease(rk_shared->lock);
}

/*
 * Start a transaction for catalog work, unless one is open.  The worker's
 * own writes commit locally (never waiting for a synchronous standby) and
 * also while this node is fenced.  The caller's memory context stays
 * current, so what it allocates survives the commit.
 */
bool
rk_xact_begin(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (IsTransactionState())
		return false;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	rk_commit_locally();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(cxt);
	return true;
}

void
rk_xact_end(bool started)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (!started)
		return;
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

/*
 * Has the startup process replayed all of this standby's local WAL?  It has
 * once it asked for streaming (the WAL receiver's start position is set) or
 * waits for WAL to arrive; only then is rk_local_lsn() how far this node's
 * WAL goes, and only then may it vote or run (RkShared.wal_end_known).
 */
static void
note_wal_end(void)
{
	XLogRecPtr	start;
	bool		known;

	if (rk_shared->wal_end_known)
		return;
	SpinLockAcquire(&WalRcv->mutex);
	start = WalRcv->receiveStart;
	SpinLockRelease(&WalRcv->mutex);
	known = !XLogRecPtrIsInvalid(start);
	if (!known)
	{
		bool		started = rk_xact_begin();
		char	   *wait = rk_query_value("SELECT wait_event FROM pg_catalog.pg_stat_activity "
										  "WHERE backend_type OPERATOR(pg_catalog.=) 'startup'",
										  0, NULL, NULL);

		known = wait != NULL && (strcmp(wait, "RecoveryWalStream") == 0 ||
								 strcmp(wait, "RecoveryRetrieveRetryInterval") == 0);
		rk_xact_end(started);
	}
	if (!known)
		return;
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->wal_end_known = true;
	LWLockRelease(rk_shared->lock);
	ereport(LOG, (errmsg(RK_LOG_PREFIX "local WAL replayed up to %X/%X: this standby may vote",
						 LSN_FORMAT_ARGS(rk_local_lsn()))));
}

/* Connections to addresses the registry no longer holds are closed. */
static void
forget_unregistered(RkView *v)
{
	char		keys[RK_MAX_NODES][RK_HOST_LEN + 16];
	const char *keep[RK_MAX_NODES];

	for (int i = 0; i < v->npeers; i++)
	{
		snprintf(keys[i], sizeof(keys[i]), "%s:%d", v->peers[i].host, v->peers[i].port);
		keep[i] = keys[i];
	}
	rk_calls_forget_others(keep, v->npeers);
}

/*
 * The addresses of the nodes registered by DNS name, for the node-to-node
 * functions' check of where a call comes from (extension/peer_api.c), which
 * must not wait on a resolver.  Each name is resolved at most once every
 * RK_RESOLVE_EVERY_MS, whether the lookup worked or not (a resolver that
 * times out costs this round the time, not every round).  A name the DNS
 * says does not exist has no addresses any more; one whose lookup failed
 * for another reason (a resolver down for a moment) keeps the addresses it
 * had for up to RK_RESOLVE_KEEP_MS after its last good lookup.  A name
 * with none: its calls are refused.
 */
#define RK_RESOLVE_EVERY_MS 60000
#define RK_RESOLVE_KEEP_MS 600000
static void
resolve_host_names(RkView *v)
{
	RkResolvedHost *fresh = palloc0(sizeof(RkResolvedHost) * RK_MAX_NODES);
	int			n = 0;
	int64		now = rk_monotonic_ms();

	for (int i = 0; i < v->npeers; i++)
	{
		const char *host = v->peers[i].host;
		struct addrinfo hints = {0};
		struct addrinfo *res = NULL;
		RkResolvedHost *r = &fresh[n];
		bool		known = false;
		int			rc;

		if (v->peers[i].is_self || rk_host_is_address(host))
			continue;
		for (int k = 0; k < n && !known; k++)
			known = strcmp(fresh[k].host, host) == 0;
		if (known)
			continue;
		/* What it resolved to last time. */
		LWLockAcquire(rk_shared->lock, LW_SHARED);
		for (int k = 0; k < rk_shared->nresolved; k++)
			if (strcmp(rk_shared->resolved[k].host, host) == 0)
				*r = rk_shared->resolved[k];
		LWLockRelease(rk_shared->lock);
		strlcpy(r->host, host, sizeof(r->host));
		n++;
		if (r->tried_ms != 0 && now - r->tried_ms < RK_RESOLVE_EVERY_MS)
			continue;
		r->tried_ms = now;
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		rc = getaddrinfo(host, NULL, &hints, &res);
		if (rc != 0)
		{
			/* No such name (an authoritative answer), or good addresses too old. */
			if (rc == EAI_NONAME ||
#ifdef EAI_NODATA
				rc == EAI_NODATA ||
#endif
				now - r->resolved_ms >= RK_RESOLVE_KEEP_MS)
				r->naddr = 0;
			ereport(LOG,
					(errmsg(RK_LOG_PREFIX "could not resolve the host name \"%s\" of node \"%s\": %s",
							host, v->peers[i].name, gai_strerror(rc)),
					 errdetail(r->naddr > 0 ?
							   "Its calls are still taken from the addresses it had, for at most %d s after they last resolved." :
							   "Its calls are refused until it resolves (%d s at most after the last good lookup).",
							   RK_RESOLVE_KEEP_MS / 1000)));
			continue;
		}
		r->naddr = 0;
		for (struct addrinfo *a = res; a != NULL && r->naddr < RK_MAX_HOST_ADDRS; a = a->ai_next)
		{
			if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
				a->ai_addrlen > sizeof(struct sockaddr_storage))
				continue;
			memset(&r->addr[r->naddr], 0, sizeof(struct sockaddr_storage));
			memcpy(&r->addr[r->naddr], a->ai_addr, a->ai_addrlen);
			r->naddr++;
		}
		freeaddrinfo(res);
		r->resolved_ms = now;
	}
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	memcpy(rk_shared->resolved, fresh, sizeof(RkResolvedHost) * n);
	rk_shared->nresolved = n;
	LWLockRelease(rk_shared->lock);
	pfree(fresh);
}

/*
 * Read the registry, in a transaction of its own.  False if the extension
 * is not created yet, which rk_status() then says.
 */
static bool
begin_round(RkView *v)
{
	bool		started = rk_xact_begin();
	bool		found;

	pgstat_report_activity(STATE_RUNNING, "reading the registry");
	v->now = GetCurrentTimestamp();
	v->mono = rk_monotonic_ms();
	v->in_recovery = RecoveryInProgress();
	rk_election_position(&v->tli, &v->lsn);
	if (v->in_recovery && !v->ctx->promoted_here)
		v->ctx->standby_tli = rk_current_timeline();
	found = read_registry(v);
	if (found)
		forget_unregistered(v);
	rk_node_secret_narrow_mode();
	rk_shared->node_secret_ok = found && rk_node_secret_valid(rk_node_secret());
	rk_shared->node_secret_checked = found;
	if (found && rk_credentials_sync_passfile())
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "the password file now holds the credentials in the registry")));
	strlcpy(v->peer_user, rk_peer_user(v->repl_role), NAMEDATALEN);
	if (found && v->in_recovery && v->self[0] && v->repl_role[0] &&
		rk_upstream_drop_password(v->self, v->repl_role))
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "primary_conninfo no longer holds a password; the password file has it")));
	rk_xact_end(started);
	if (found)
		resolve_host_names(v);
	if (!found)
	{
		LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
		strlcpy(rk_shared->worker_state, "waiting for CREATE EXTENSION", sizeof(rk_shared->worker_state));
		rk_shared->registry_seen = false;
		LWLockRelease(rk_shared->lock);
		return false;
	}

	if (v->in_recovery)
	{
		note_wal_end();
		(void) rk_walreceiver_heard_ms();	/* notice new WAL within a round */
	}

	/* Record who this node is (a clone corrects the name it inherited). */
	if (v->self[0])
		rk_state_set_identity(v->self, v->in_recovery ? "standby" : "primary");
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	v->st = rk_shared->state;
	LWLockRelease(rk_shared->lock);
	return true;
}

/*
 * Probe the other nodes and turn what they said into a primary's or a
 * standby's event.  Network waits run outside any transaction; the
 * primary's catalog upkeep (slots, joined standbys) runs in its own.
 */
static RkEvent
observe(RkView *v, RkState state, bool rejoin_check)
{
	RkEvent		event;
	bool		started;

	if (!v->in_recovery)
	{
		record_members(v);
		if (state == RK_STATE_PRIMARY)
			rk_create_peer_slots(v);
	}
	probe_peers(v, !v->in_recovery && state == RK_STATE_PRIMARY && !rejoin_check &&
				pg_atomic_read_u32(&rk_shared->fenced) == 0);
	if (!v->in_recovery)
	{
		started = rk_xact_begin();
		cut_partitioned_walsenders(v);
		mark_joined(v);
		note_resynced(v);
		rk_xact_end(started);
		return primary_event(v);
	}
	event = standby_event(v);
	if (event == RK_EV_PRIMARY_SEEN && diverged(v))
		event = RK_EV_DIVERGED;
	if (event == RK_EV_PRIMARY_SEEN && state == RK_STATE_FOLLOWING && !rejoin_check)
		rk_drop_idle_peer_slots(v);
	if (event == RK_EV_PRIMARY_SEEN)
		fetch_credentials(v);
	if (!rejoin_check)
		record_members(v);
	return event;
}

/*
 * One round: read the registry, derive one event (probing the other nodes
 * only when the event needs their answers), and hand it to the state
 * machine.  No transaction spans the round.  Returns the new state.
 */
static RkState
worker_round(RkState state, RkWorkerContext *ctx)
{
	RkView	   *v = palloc0(sizeof(RkView));
	RkObservation obs = {0};
	RkEvent		event;

	v->ctx = ctx;
	if (!begin_round(v))
		return RK_STATE_IDLE;

	obs.registered = v->self_idx >= 0;
	obs.in_recovery = v->in_recovery;
	obs.elected = rk_state_elected(&v->st);
	obs.rejoin_pending = v->st.rejoin_pending;
	obs.manual_request = rk_manual_request_pending(ctx);
	obs.probe_event = RK_EV_NONE;
	event = rk_derive_event(state, &obs);
	if (event == RK_EV_NONE || rk_event_needs_probe(event))
	{
		obs.probe_event = observe(v, state, event == RK_EV_REJOIN_PENDING);
		event = rk_derive_event(state, &obs);
	}

	rk_pause_note(v);			/* with this round's answers, if it probed */
	state = rk_fsm_dispatch(state, event, v);
	rk_pause_upkeep(v, state);
	rk_hooks_note_primary(v);
	rk_hooks_poll(v);
	if (!v->in_recovery && !RecoveryInProgress())
		rk_journal_flush(ctx);

	pgstat_report_activity(STATE_IDLE, NULL);
	publish(v, state);
	pfree(v);
	return state;
}

void
rk_worker_main(Datum main_arg)
{
	RkState		state = RK_STATE_IDLE;
	RkWorkerContext *ctx;
	MemoryContext round_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(rk_database, NULL, 0);
	pgstat_report_appname("replication_kit worker");
	/* A fenced primary looks read-only to clients, but not to its worker. */
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/* Nothing planted in a schema of a configured search_path runs here. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->worker_pid = MyProcPid;
	rk_shared->worker_latch = MyLatch;
	rk_state_load_locked();
	/* A new worker gives the primary a full failover_timeout from now. */
	rk_shared->last_seen_primary = Max(rk_shared->last_seen_primary, GetCurrentTimestamp());
	rk_shared->last_seen_primary_ms = Max(rk_shared->last_seen_primary_ms, rk_monotonic_ms());
	LWLockRelease(rk_shared->lock);
	before_shmem_exit(worker_detach, (Datum) 0);

	ereport(LOG, (errmsg(RK_LOG_PREFIX "worker started on database \"%s\"", rk_database)));
	check_timing();
	ctx = MemoryContextAllocZero(TopMemoryContext, sizeof(RkWorkerContext));
	round_cxt = AllocSetContextCreate(TopMemoryContext, "replication_kit round", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			ereport(LOG, (errmsg(RK_LOG_PREFIX "worker reloaded its configuration")));
			check_timing();
		}

		old = MemoryContextSwitchTo(round_cxt);
		state = worker_round(state, ctx);
		MemoryContextSwitchTo(old);
		MemoryContextReset(round_cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 rk_probe_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
