/*-------------------------------------------------------------------------
 *
 * module.c
 *		The module's entry point, _PG_init: the one place that knows both
 *		the shared layer (core/) and the worker (worker/).  It defines the
 *		settings, asks for shared memory, installs the commit guard and the
 *		replication gate every backend inherits, registers the background
 *		worker, and runs the fence at start.
 *
 * The library must be in shared_preload_libraries: the worker, the shared
 * memory and the commit guard all exist only if it is loaded by the
 * postmaster.  Loaded any other way (CREATE EXTENSION in a server that does
 * not preload it), every function refuses to run and says how to fix it
 * (rk_require_preloaded).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "libpq/auth.h"
#include "miscadmin.h"

#include "core/guard.h"
#include "core/settings.h"
#include "core/shmem.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

void		_PG_init(void);
static void rk_client_auth(Port *port, int status);
static void rk_process_utility(RK_UTILITY_ARGS);

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
	rk_shmem_install();

	/* Every backend inherits these: no commit on a primary without its lease. */
	RegisterXactCallback(rk_commit_guard, NULL);
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = rk_process_utility;

	/* And no standby streams from a fenced primary but the one taking over. */
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = rk_client_auth;

	rk_register_worker();
	rk_register_http_worker();

	/* An unfinished rejoin: its helper puts the node back together first. */
	rk_rejoin_resume_at_start();
	/* Before the postmaster accepts a connection: was this node replaced? */
	rk_fence_at_start();
	/* And can it recover as far as the newest timeline it knows of? */
	rk_start_on_own_timeline_if_diverged();
}

static void
rk_client_auth(Port *port, int status)
{
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	rk_reserve_gate(port, status);
	rk_replication_gate(port, status);
}

static void
rk_process_utility(RK_UTILITY_ARGS)
{
	rk_guard_utility(pstmt->utilityStmt);
	if (prev_process_utility)
		prev_process_utility(RK_UTILITY_PASS);
	else
		standard_ProcessUtility(RK_UTILITY_PASS);
	rk_guard_utility_done(pstmt->utilityStmt);
}
