/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		The kit's shared memory: asked for in the postmaster, set up once,
 *		and loaded with the node's durable state so that the commit guard
 *		knows from the first backend on whether this node needs a lease.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "core/shmem.h"

RkShared   *rk_shared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#ifdef RK_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

static void rk_shmem_request(void);
static void rk_shmem_startup(void);

/* Called from _PG_init: ask for the memory and the lock, set up at startup. */
void
rk_shmem_install(void)
{
#ifdef RK_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rk_shmem_request;
#else
	rk_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rk_shmem_startup;
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
		rk_shared->last_seen_primary_ms = rk_monotonic_ms();
		pg_atomic_init_u32(&rk_shared->guard_enforced, 0);
		pg_atomic_init_u64(&rk_shared->lease_until, 0);
		pg_atomic_init_u32(&rk_shared->fenced, 0);
		pg_atomic_init_u32(&rk_shared->elected, 0);
		pg_atomic_init_u64(&rk_shared->n_elections, 0);
		pg_atomic_init_u64(&rk_shared->n_promotions, 0);
		pg_atomic_init_u64(&rk_shared->n_votes, 0);
		pg_atomic_init_u64(&rk_shared->n_probe_errors, 0);
		pg_atomic_init_u64(&rk_shared->cluster_min_failover_ms, 0);
		pg_atomic_init_u64(&rk_shared->cluster_max_lease_ms, 0);
		pg_atomic_init_u64(&rk_shared->walrcv_last_msg, 0);
		pg_atomic_init_u64(&rk_shared->walrcv_heard_ms, 0);

		/*
		 * A node of a cluster of several starts without a lease: it commits
		 * nothing until it is the primary of a term it won and a majority
		 * has answered it.  That holds for a standby too, should it leave
		 * recovery by any other way than the worker's election.
		 */
		(void) rk_state_read(&rk_shared->state);
		rk_shared->state_loaded = true;
		pg_atomic_write_u32(&rk_shared->elected, rk_state_elected(&rk_shared->state) ? 1 : 0);
		if (rk_shared->state.members >= 2)
			pg_atomic_write_u32(&rk_shared->guard_enforced, 1);

		/*
		 * Nor does one that knows it is no longer the primary of the current
		 * term: a crash-restart skips the fence at start, and the fence that
		 * was in memory is gone.
		 */
		if (strcmp(rk_shared->state.role, "primary") == 0 && rk_shared->state.members >= 2 &&
			!rk_state_elected(&rk_shared->state))
			pg_atomic_write_u32(&rk_shared->fenced, 1);
	}
	LWLockRelease(AddinShmemInitLock);
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
