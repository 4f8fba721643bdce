/*-------------------------------------------------------------------------
 *
 * replication_kit.c
 *		Module entry point: the replication_kit.* settings, the shared memory
 *		every process of the server sees, the background worker's
 *		registration, and the checks that every SQL-callable function makes
 *		before it touches anything (library preloaded, superuser, role).
 *
 * The library must be in shared_preload_libraries: the worker, the shared
 * memory and the commit guard all exist only if it is loaded by the
 * postmaster.  Loaded any other way (CREATE EXTENSION in a server that does
 * not preload it), every function refuses to run and says how to fix it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "libpq/auth.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "replication_kit.h"

PG_MODULE_MAGIC;

/* Settings. */
char	   *rk_node_name_setting = NULL;
char	   *rk_database = NULL;
int			rk_probe_interval_ms = 1000;
int			rk_probe_timeout_ms = 1000;
int			rk_failover_timeout_ms = 5000;
int			rk_fence_timeout_ms = 3000;
bool		rk_auto_failover = true;
bool		rk_auto_rejoin = true;
char	   *rk_simulate_partition = NULL;

RkShared   *rk_shared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#ifdef RK_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

void		_PG_init(void);
static void rk_client_auth(Port *port, int status);
static void rk_define_settings(void);
static void rk_shmem_request(void);
static void rk_shmem_startup(void);

void
_PG_init(void)
{
	/*
	 * Only the postmaster's load counts.  Anything else (a backend loading
	 * the library for CREATE EXTENSION without preloading) leaves rk_shared
	 * NULL, and rk_require_preloaded() reports it.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	rk_define_settings();

#ifdef RK_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rk_shmem_request;
#else
	rk_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rk_shmem_startup;

	/* Every backend inherits this: no commit on a primary without its lease. */
	RegisterXactCallback(rk_commit_guard, NULL);

	/* And no standby streams from a fenced primary but the one taking over. */
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = rk_client_auth;

	rk_register_worker();

	/* Before the postmaster accepts a connection: was this node replaced? */
	rk_fence_at_start();
}

static void
rk_define_settings(void)
{
	DefineCustomStringVariable("replication_kit.node_name",
							   "Overrides the name this node goes by in the registry.",
							   "Normally left empty: a standby takes its name from the application_name "
							   "of primary_conninfo, and the name is then remembered in PGDATA.",
							   &rk_node_name_setting, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("replication_kit.database",
							   "Database the replication_kit worker connects to.",
							   "CREATE EXTENSION replication_kit must be run in this database.",
							   &rk_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("replication_kit.probe_interval",
							"How often the worker probes the other nodes.",
							NULL,
							&rk_probe_interval_ms, 1000, 100, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("replication_kit.probe_timeout",
							"Deadline for one probe of another node, connection included.",
							NULL,
							&rk_probe_timeout_ms, 1000, 100, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("replication_kit.failover_timeout",
							"How long the primary must be unreachable before a standby starts an election.",
							NULL,
							&rk_failover_timeout_ms, 5000, 500, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("replication_kit.fence_timeout",
							"How long a primary keeps accepting commits without hearing from a majority.",
							"Must be shorter than failover_timeout; the worker uses at most "
							"failover_timeout minus probe_interval.",
							&rk_fence_timeout_ms, 3000, 200, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomBoolVariable("replication_kit.auto_failover",
							 "Whether the workers promote a standby by themselves when the primary dies.",
							 NULL,
							 &rk_auto_failover, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("replication_kit.auto_rejoin",
							 "Whether a fenced old primary rewinds and rejoins as a standby by itself.",
							 NULL,
							 &rk_auto_rejoin, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("replication_kit.simulate_partition",
							   "For tests: nodes this node behaves as if cut off from.",
							   "A comma-separated list of node names.  The worker neither probes them nor "
							   "answers their calls, and replication connections from them are refused and "
							   "ended, as if the network between them were down.",
							   &rk_simulate_partition, "",
							   PGC_SIGHUP, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);

	MarkGUCPrefixReserved("replication_kit");
}

static void
rk_shmem_request(void)
{
#ifdef RK_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(RkShared)));
	RequestNamedLWLockTranche(RK_EXTENSION_NAME, 1);
}

static void
rk_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rk_shared = ShmemInitStruct(RK_EXTENSION_NAME, sizeof(RkShared), &found);
	if (!found)
	{
		memset(rk_shared, 0, sizeof(RkShared));
		rk_shared->lock = &(GetNamedLWLockTranche(RK_EXTENSION_NAME))->lock;
		strlcpy(rk_shared->worker_state, "starting", sizeof(rk_shared->worker_state));
		rk_shared->last_seen_primary = GetCurrentTimestamp();
		pg_atomic_init_u32(&rk_shared->guard_enforced, 0);
		pg_atomic_init_u64(&rk_shared->lease_until, 0);
		pg_atomic_init_u32(&rk_shared->fenced, 0);

		/*
		 * A node that was the primary of a cluster of several starts without
		 * a lease: it commits nothing until a majority has answered it.
		 */
		(void) rk_state_read(&rk_shared->state);
		rk_shared->state_loaded = true;
		if (strcmp(rk_shared->state.role, "primary") == 0 && rk_shared->state.members >= 2)
			pg_atomic_write_u32(&rk_shared->guard_enforced, 1);
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
rk_client_auth(Port *port, int status)
{
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	rk_replication_gate(port, status);
}

/*
 * Every SQL-callable function starts here: without the preloaded library
 * there is no worker and no shared state, so nothing the kit sets up would
 * be watched.
 */
void
rk_require_preloaded(void)
{
	if (rk_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replication_kit is not loaded through shared_preload_libraries"),
				 errdetail("The replication_kit worker and its shared memory exist only when the library is preloaded."),
				 errhint("Add replication_kit to shared_preload_libraries in postgresql.conf and restart the server.")));
}

void
rk_require_superuser(const char *funcname)
{
	rk_require_preloaded();
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", funcname),
				 errdetail("replication_kit's functions are for superusers only.")));
}

void
rk_require_primary(const char *funcname)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s can only run on the primary", funcname),
				 errdetail("This server is a standby; the registry is changed on the primary and replicated from there."),
				 errhint("Connect to the primary and run it there; rk_status() shows which node that is.")));
}

/*
 * The functions that change files, roles and slots are, like ALTER SYSTEM,
 * not transactional in their effects: a ROLLBACK could not take back a
 * rewritten pg_hba.conf.  So they run only as statements of their own.
 */
void
rk_require_not_in_transaction_block(const char *funcname)
{
	if (IsTransactionBlock())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s cannot run inside a transaction block", funcname),
				 errdetail("It rewrites configuration files and replication slots, which a ROLLBACK could not undo."),
				 errhint("Run it as a statement of its own, outside BEGIN ... COMMIT.")));
}

/* Ask the worker to look at the registry again now rather than later. */
void
rk_wake_worker(void)
{
	pid_t		pid;

	if (rk_shared == NULL)
		return;
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	pid = rk_shared->worker_pid;
	if (pid != 0 && rk_shared->worker_latch != NULL)
		SetLatch(rk_shared->worker_latch);
	LWLockRelease(rk_shared->lock);
}
