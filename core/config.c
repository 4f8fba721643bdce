/*-------------------------------------------------------------------------
 *
 * config.c
 *		Changing server settings the way ALTER SYSTEM does, from C, and
 *		reading them back: the running value, and the value the
 *		configuration files will give after the next reload or restart.
 *
 * ALTER SYSTEM itself refuses to run inside a function, so the kit builds
 * the statement and hands it to AlterSystemSetConfigFile(), which takes the
 * same lock, validates the value the same way and rewrites
 * postgresql.auto.conf atomically.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "utils/resowner.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/guc.h"

#include "core/config.h"
#include "core/durable.h"
#include "core/registry.h"
#include "core/guard.h"

/*
 * ALTER SYSTEM SET name = 'value', or ALTER SYSTEM RESET name when value is
 * NULL.  Errors (an invalid value, a full disk) come from the server's own
 * code with its own messages.
 */
void
rk_alter_system(const char *name, const char *value)
{
	AlterSystemStmt *stmt = makeNode(AlterSystemStmt);
	VariableSetStmt *set = makeNode(VariableSetStmt);

	set->name = pstrdup(name);
	if (value != NULL)
	{
		set->kind = VAR_SET_VALUE;
		set->args = list_make1(rk_make_string_const(value));
	}
	else
		set->kind = VAR_RESET;
	stmt->setstmt = set;

	AlterSystemSetConfigFile(stmt);
}

/* What pg_reload_conf() does: the postmaster rereads the files. */
void
rk_reload_config(void)
{
	if (kill(PostmasterPid, SIGHUP))
		ereport(WARNING,
				(errmsg("could not send reload signal to the postmaster: %m"),
				 errhint("Run SELECT pg_reload_conf() to apply the change.")));
}

/*
 * The value the server runs with, as the configuration files and the
 * command line set it: a session's own SET does not count.
 */
char *
rk_setting_value(const char *name)
{
	return pstrdup(GetConfigOptionResetString(name));
}

/*
 * The value the configuration files set for `name` (the last assignment
 * wins, postgresql.auto.conf last of all), or NULL if no file sets it.
 * Needed to tell "changed, waiting for a restart" from "not changed".
 */
char *
rk_file_setting_value(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};

	return rk_query_value("SELECT setting FROM pg_catalog.pg_file_settings "
						  "WHERE name OPERATOR(pg_catalog.=) $1 ORDER BY seqno DESC LIMIT 1",
						  1, argtypes, values);
}

/*
 * Run `steps`; if it fails, roll back what it did inside the database (a
 * subtransaction) and call `undo` to put back what it changed outside (files,
 * slots), then rethrow the original error.  The pattern PL/pgSQL uses for an
 * EXCEPTION block, so that the undo runs with locks and buffers released.
 */
void
rk_guarded(void (*steps) (void *), void (*undo) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		steps(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		undo(arg);
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/*
 * One kit function at a time edits the configuration files: each reads a
 * file, changes it and writes it whole (and on failure puts back what it
 * read), so two at once would lose one's change.  A transaction-level
 * advisory lock, in no database (field 1 is 0, which no session's own
 * pg_advisory_lock uses), held until the calling function's transaction
 * ends, its undo included.
 */
void
rk_lock_config_files(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, InvalidOid, 0x726b, 0x636f6e66, 1);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* postgresql.auto.conf as it is now, to put back if a later step fails. */
char *
rk_auto_conf_snapshot(size_t *len)
{
	char	   *content;

	rk_lock_config_files();
	content = rk_read_whole_file(PG_AUTOCONF_FILENAME, len);

	if (content == NULL && errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", PG_AUTOCONF_FILENAME)));
	return content;
}

/*
 * Put back a snapshot of postgresql.auto.conf, under the lock ALTER SYSTEM
 * takes and with the same temp-file-and-rename dance.
 */
void
rk_auto_conf_restore(const char *content, size_t len)
{
	if (content == NULL)
		return;
	LWLockAcquire(AutoFileLock, LW_EXCLUSIVE);
	rk_durable_write(PG_AUTOCONF_FILENAME, content, len, pg_file_create_mode);
	LWLockRelease(AutoFileLock);
}

/*
 * Make the commit of the calling function's transaction wait for the local
 * flush only.  The kit's own registry changes must not hang on a
 * synchronous standby that is down: removing that standby is exactly what a
 * DBA may be trying to do.
 */
void
rk_commit_locally(void)
{
	/*
	 * The kit's own bookkeeping must also work on a fenced node, which
	 * looks read-only to sessions (default_transaction_read_only): a
	 * superuser's call of the kit's functions writes there all the same.
	 */
	rk_guard_bypass = true;
	if (!RecoveryInProgress())
		XactReadOnly = false;
	(void) set_config_option("synchronous_commit", "local",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
}
