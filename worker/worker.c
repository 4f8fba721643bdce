/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The replication_kit background worker, one on every node.  It starts
 *		when the server reaches a consistent state (so it runs on standbys
 *		too), connects to replication_kit.database, and every probe interval
 *		reads the registry and records this node's identity.
 *
 * The loop is the standard one: wait on the latch with a timeout and
 * postmaster-death exit, reset, check for interrupts (SIGTERM ends the
 * worker at once), reload the configuration on SIGHUP.  Any ERROR ends the
 * worker and the postmaster starts it again a second later; nothing it
 * holds only in memory is trusted after that.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "replication_kit.h"

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
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->worker_pid = 0;
	rk_shared->worker_latch = NULL;
	strlcpy(rk_shared->worker_state, "stopped", sizeof(rk_shared->worker_state));
	LWLockRelease(rk_shared->lock);
}

static void
set_worker_state(const char *state)
{
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	strlcpy(rk_shared->worker_state, state, sizeof(rk_shared->worker_state));
	LWLockRelease(rk_shared->lock);
}

/*
 * Read the registry into shared memory.  Returns false if the extension is
 * not (yet) created in this database: on a standby it appears when the
 * primary's CREATE EXTENSION is replayed.
 */
static bool
refresh_registry(void)
{
	RkPeer		peers[RK_MAX_NODES];
	int			npeers = 0;
	char		method[8] = "FIRST";
	int			num_sync = 0;
	char	   *self;
	int			ret;

	if (!OidIsValid(get_extension_oid(RK_EXTENSION_NAME, true)))
		return false;

	self = rk_self_name();

	SPI_connect();
	ret = SPI_execute(psprintf("SELECT node_name, host, port, role = 'primary', sync FROM %s ORDER BY node_id",
							   rk_table("rk_nodes")), true, RK_MAX_NODES);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the registry: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RkPeer	   *p = &peers[npeers++];
		bool		isnull;

		memset(p, 0, sizeof(RkPeer));
		strlcpy(p->name, SPI_getvalue(tup, desc, 1), NAMEDATALEN);
		strlcpy(p->host, SPI_getvalue(tup, desc, 2), RK_HOST_LEN);
		p->port = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		p->registry_primary = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		p->sync = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		p->is_self = self != NULL && strcmp(self, p->name) == 0;
	}
	ret = SPI_execute(psprintf("SELECT sync_method, num_sync FROM %s", rk_table("rk_cluster")), true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;

		strlcpy(method, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), sizeof(method));
		num_sync = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	/* Keep what was learned by probing peers that are still registered. */
	for (int i = 0; i < npeers; i++)
	{
		for (int j = 0; j < rk_shared->npeers; j++)
		{
			RkPeer	   *old = &rk_shared->peers[j];

			if (strcmp(old->name, peers[i].name) == 0 && strcmp(old->host, peers[i].host) == 0 &&
				old->port == peers[i].port)
			{
				peers[i].reachable = old->reachable;
				peers[i].last_ok = old->last_ok;
				peers[i].last_attempt = old->last_attempt;
				peers[i].in_recovery = old->in_recovery;
				peers[i].timeline = old->timeline;
				peers[i].lsn = old->lsn;
				peers[i].term = old->term;
				memcpy(peers[i].error, old->error, RK_REASON_LEN);
			}
		}
	}
	memcpy(rk_shared->peers, peers, sizeof(RkPeer) * npeers);
	rk_shared->npeers = npeers;
	strlcpy(rk_shared->policy_method, method, sizeof(rk_shared->policy_method));
	rk_shared->policy_num_sync = num_sync;
	rk_shared->registry_seen = true;
	LWLockRelease(rk_shared->lock);

	/*
	 * Record who this node is.  A standby's name comes from its
	 * primary_conninfo, and writing it down corrects a state file inherited
	 * from the primary by pg_basebackup.
	 */
	if (self != NULL)
		rk_state_set_identity(self, RecoveryInProgress() ? "standby" : "primary");
	return true;
}

/* One pass of the loop, in a transaction of its own. */
static void
worker_tick(void)
{
	bool		have_registry;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "reading the registry");

	have_registry = refresh_registry();

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	set_worker_state(have_registry ? (RecoveryInProgress() ? "standby" : "primary")
					 : "waiting for CREATE EXTENSION");
}

void
rk_worker_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(rk_database, NULL, 0);
	pgstat_report_appname("replication_kit worker");

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->worker_pid = MyProcPid;
	rk_shared->worker_latch = MyLatch;
	if (!rk_shared->state_loaded)
	{
		(void) rk_state_read(&rk_shared->state);
		rk_shared->state_loaded = true;
	}
	LWLockRelease(rk_shared->lock);
	before_shmem_exit(worker_detach, (Datum) 0);

	ereport(LOG, (errmsg(RK_LOG_PREFIX "worker started on database \"%s\"", rk_database)));

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			ereport(LOG, (errmsg(RK_LOG_PREFIX "worker reloaded its configuration")));
		}

		worker_tick();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 rk_probe_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
