/*-------------------------------------------------------------------------
 *
 * checks.c
 *		The checks every SQL-callable function makes before it touches
 *		anything: the library is preloaded, the caller is a superuser, the
 *		node is the primary, the call is a statement of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"

#include "core/shmem.h"
#include "extension/extension.h"

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
