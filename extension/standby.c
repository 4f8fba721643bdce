/*-------------------------------------------------------------------------
 *
 * standby.c
 *		Registering standbys and the synchronous policy (the walkthrough's
 *		steps 8-14), on the primary:
 *
 *		rk_add_standby(node_name, host, port, sync, data_directory)
 *		rk_remove_standby(node_name)
 *		rk_set_sync(method, num_sync)
 *
 * A standby is a registry row, a physical replication slot named after it,
 * pg_hba.conf lines for its host if no rule lets it in yet, and a place in
 * synchronous_standby_names, which is always rebuilt from the registry:
 * the synchronous standbys in the order they were added, under the stored
 * FIRST/ANY policy.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "core/config.h"
#include "core/conninfo.h"
#include "core/guard.h"
#include "core/registry.h"
#include "core/settings.h"
#include "core/shmem.h"
#include "extension/extension.h"

PG_FUNCTION_INFO_V1(rk_add_standby);
PG_FUNCTION_INFO_V1(rk_remove_standby);
PG_FUNCTION_INFO_V1(rk_set_sync);

#define ARG_TEXT_OR_NULL(n) (PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n)))

/* Run a statement with text arguments through SPI; returns rows processed. */
static uint64
run_sql(const char *sql, int nargs, const char **args, int expect)
{
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	int			ret;
	uint64		processed;

	Assert(nargs <= 4);
	for (int i = 0; i < nargs; i++)
		values[i] = CStringGetTextDatum(args[i]);
	SPI_connect();
	ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, false, 0);
	if (ret != expect)
		elog(ERROR, "registry statement failed: %s", SPI_result_code_string(ret));
	processed = SPI_processed;
	SPI_finish();
	return processed;
}

static bool
slot_exists(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};

	return rk_query_value("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
						  1, argtypes, values) != NULL;
}

/* The address to write into pg_hba.conf for a standby's host. */
static char *
hba_address_for_host(const char *host)
{
	unsigned char buf[16];

	if (inet_pton(AF_INET, host, buf) == 1)
		return psprintf("%s/32", host);
	if (inet_pton(AF_INET6, host, buf) == 1)
		return psprintf("%s/128", host);
	return pstrdup(host);
}

typedef struct AddStandby
{
	const char *name;
	const char *host;
	int			port;
	bool		sync;
	const char *role;
	bool		slot_created;
	RkHbaEdit	hba;
	char	   *auto_conf;
	size_t		auto_conf_len;
} AddStandby;

static void
add_standby_steps(void *arg)
{
	AddStandby *as = arg;
	const char *args[4];

	args[0] = as->name;
	args[1] = as->host;
	args[2] = psprintf("%d", as->port);
	args[3] = as->sync ? "true" : "false";
	run_sql(psprintf("INSERT INTO %s (node_id, node_name, host, port, role, sync) "
					 "SELECT coalesce(max(node_id), 0) + 1, $1, $2, $3::int, 'standby', $4::bool FROM %s",
					 rk_table("rk_nodes"), rk_table("rk_nodes")),
			4, args, SPI_OK_INSERT);

	run_sql("SELECT pg_catalog.pg_create_physical_replication_slot($1, true)", 1, args, SPI_OK_SELECT);
	as->slot_created = true;

	if (!rk_hba_covers("replication", as->role, as->host) ||
		!rk_hba_covers(rk_database, RK_NODE_ROLE, as->host))
		(void) rk_hba_add_lines(&as->hba, as->role, hba_address_for_host(as->host),
								"scram-sha-256", as->name);

	(void) rk_apply_sync_names();
}

static void
add_standby_undo(void *arg)
{
	AddStandby *as = arg;

	rk_auto_conf_restore(as->auto_conf, as->auto_conf_len);
	rk_hba_restore(&as->hba);
	if (as->slot_created)
	{
		const char *args[1] = {as->name};

		run_sql("SELECT pg_catalog.pg_drop_replication_slot($1)", 1, args, SPI_OK_SELECT);
	}
	rk_reload_config();
}

/* The registered primary's host and port, for the clone command. */
static void
primary_address(char **host, char **port)
{
	int			ret;

	SPI_connect();
	ret = SPI_execute(psprintf("SELECT host, port::text FROM %s WHERE role = 'primary'",
							   rk_table("rk_nodes")), true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no primary is registered"),
				 errhint("Run rk_setup_primary() on the primary first.")));
	*host = MemoryContextStrdup(CurTransactionContext,
								SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	*port = MemoryContextStrdup(CurTransactionContext,
								SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	SPI_finish();
}

/*
 * rk_add_standby(node_name, host, port, sync, data_directory): register a
 * standby and return the one command that clones it.  The command runs on
 * the standby's host as the server's OS user; the replication password
 * comes from PGPASSWORD or ~/.pgpass there, and pg_basebackup writes it
 * into the clone's primary_conninfo together with the standby's name.
 * (It reads as one list of checks, each with its own error, then the one
 * guarded change; splitting it would scatter the refusals.)
 */
Datum
rk_add_standby(PG_FUNCTION_ARGS)
{
	AddStandby	as = {0};
	const char *datadir;
	char	   *phost;
	char	   *pport;
	int			nodes;

	rk_require_superuser("rk_add_standby");
	rk_require_primary("rk_add_standby");
	rk_require_not_in_transaction_block("rk_add_standby");

	as.name = ARG_TEXT_OR_NULL(0);
	as.host = ARG_TEXT_OR_NULL(1);
	rk_validate_node_name(as.name);
	rk_validate_host(as.host);
	rk_validate_port(PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2));
	as.port = PG_GETARG_INT32(2);
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("sync must not be null"),
				 errhint("Pass true for a standby that may be synchronous, false for an asynchronous one.")));
	as.sync = PG_GETARG_BOOL(3);
	datadir = ARG_TEXT_OR_NULL(4);
	if (datadir != NULL && (datadir[0] == '\0' || strchr(datadir, '\n') || strchr(datadir, '\r')))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid data directory"),
				 errdetail("The data directory must be a non-empty path on one line.")));

	rk_commit_locally();
	primary_address(&phost, &pport);
	as.role = rk_registry_replication_role();
	if (as.role == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no replication role is set up"),
				 errhint("Run rk_create_replicator() first.")));

	if (rk_query_value(psprintf("SELECT 1 FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
					   1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(as.name)}))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("node \"%s\" is already registered", as.name),
				 errhint("Remove it first with rk_remove_standby(), or choose another name.")));
	{
		char	   *other = rk_query_value(psprintf("SELECT node_name FROM %s WHERE host = $1 AND port = $2::int",
													rk_table("rk_nodes")),
										   2, (Oid[]) {TEXTOID, TEXTOID},
										   (Datum[]) {CStringGetTextDatum(as.host),
										   CStringGetTextDatum(psprintf("%d", as.port))});

		if (other)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("node \"%s\" is already registered at %s:%d", other, as.host, as.port)));
	}
	nodes = atoi(rk_query_value(psprintf("SELECT count(*) FROM %s", rk_table("rk_nodes")), 0, NULL, NULL));
	if (nodes >= RK_MAX_NODES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a cluster can have at most %d nodes", RK_MAX_NODES)));
	if (slot_exists(as.name))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("replication slot \"%s\" already exists", as.name),
				 errdetail("The kit names each standby's slot after the standby."),
				 errhint("Drop the slot with pg_drop_replication_slot() if it is a leftover, or choose another name.")));
	if (atoi(rk_query_value("SELECT count(*) FROM pg_catalog.pg_replication_slots", 0, NULL, NULL)) >=
		atoi(rk_setting_value("max_replication_slots")))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("all replication slots are in use"),
				 errhint("Raise max_replication_slots (rk_setup_primary(..., max_standbys => n) does) and restart.")));

	as.auto_conf = rk_auto_conf_snapshot(&as.auto_conf_len);
	rk_guarded(add_standby_steps, add_standby_undo, &as);
	rk_registry_event("add_standby", as.name,
					  psprintf("registered at %s:%d, %s", as.host, as.port,
							   as.sync ? "synchronous candidate" : "asynchronous"));
	rk_wake_worker();

	PG_RETURN_TEXT_P(cstring_to_text(rk_clone_command(datadir, as.name, phost, atoi(pport), as.role)));
}

/*
 * Drop a standby's slot, first disconnecting the WAL sender that holds it.
 * The standby keeps trying to reconnect and is refused: its slot is gone.
 */
static void
drop_slot(const char *name)
{
	const char *args[1] = {name};

	for (int attempt = 0; slot_exists(name); attempt++)
	{
		char	   *pid = rk_query_value("SELECT active_pid FROM pg_catalog.pg_replication_slots "
										 "WHERE slot_name = $1 AND active",
										 1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(name)});

		if (pid == NULL)
		{
			run_sql("SELECT pg_catalog.pg_drop_replication_slot($1)", 1, args, SPI_OK_SELECT);
			return;
		}
		if (attempt >= RK_SLOT_DROP_TRIES)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("replication slot \"%s\" stays in use by process %s", name, pid),
					 errhint("Stop the standby, then drop the slot with pg_drop_replication_slot().")));
		(void) rk_query_value(psprintf("SELECT pg_catalog.pg_terminate_backend(%s)", pid), 0, NULL, NULL);
		pg_usleep(RK_SLOT_DROP_PAUSE_MS * 1000L);
		CHECK_FOR_INTERRUPTS();
	}
}

typedef struct RemoveStandby
{
	const char *name;
	RkHbaEdit	hba;
	char	   *auto_conf;
	size_t		auto_conf_len;
} RemoveStandby;

static void
remove_standby_steps(void *arg)
{
	RemoveStandby *rs = arg;
	const char *args[1] = {rs->name};
	bool		foreign;

	run_sql(psprintf("DELETE FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
			1, args, SPI_OK_DELETE);
	(void) rk_hba_remove_lines(&rs->hba, NULL, NULL, rs->name, &foreign);
	(void) rk_apply_sync_names();
	/* Last: a dropped slot cannot be put back. */
	drop_slot(rs->name);
}

static void
remove_standby_undo(void *arg)
{
	RemoveStandby *rs = arg;

	rk_auto_conf_restore(rs->auto_conf, rs->auto_conf_len);
	rk_hba_restore(&rs->hba);
	rk_reload_config();
}

/* rk_remove_standby(node_name): undo rk_add_standby in one step. */
Datum
rk_remove_standby(PG_FUNCTION_ARGS)
{
	RemoveStandby rs = {0};
	char	   *role;
	char	   *sync;
	char	   *joined;
	int			num_sync;
	int			sync_count;

	rk_require_superuser("rk_remove_standby");
	rk_require_primary("rk_remove_standby");
	rk_require_not_in_transaction_block("rk_remove_standby");
	rs.name = ARG_TEXT_OR_NULL(0);
	rk_validate_node_name(rs.name);
	rk_commit_locally();

	role = rk_query_value(psprintf("SELECT role FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
						  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(rs.name)});
	sync = rk_query_value(psprintf("SELECT sync FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
						  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(rs.name)});
	if (role == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node \"%s\" is not registered", rs.name),
				 errhint("rk_status() lists the registered nodes.")));
	if (strcmp(role, "primary") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node \"%s\" is the primary and cannot be removed", rs.name),
				 errhint("Switch over to another node with rk_switchover() first.")));

	/*
	 * A primary that cannot reach a majority must not make one by removing
	 * nodes: the nodes it cannot reach may be electing a new primary right
	 * now, and with fewer members this one would hold a lease again.
	 */
	joined = rk_query_value(psprintf("SELECT joined_at IS NOT NULL FROM %s WHERE node_name = $1", rk_table("rk_nodes")),
							1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(rs.name)});
	if (joined != NULL && strcmp(joined, "t") == 0 && !rk_acknowledges_commits() && !rk_remove_without_majority)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot remove \"%s\" while this primary has no majority", rs.name),
				 errdetail("This primary is fenced or its lease has run out. Removing nodes that count for the majority could let it accept commits again while the nodes it cannot reach elect another primary."),
				 errhint("Restore contact with a majority first (rk_status() shows who answers). Only if the other nodes are gone for good and cannot come back: SET replication_kit.remove_without_majority = on, then remove them.")));

	num_sync = atoi(rk_query_value(psprintf("SELECT num_sync FROM %s", rk_table("rk_cluster")), 0, NULL, NULL));
	sync_count = rk_registry_sync_standby_count();
	if (strcmp(sync, "t") == 0 && num_sync > sync_count - 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("removing \"%s\" would leave %d synchronous standby%s for a policy that needs %d",
						rs.name, sync_count - 1, sync_count - 1 == 1 ? "" : "s", num_sync),
				 errhint("Lower the count first with rk_set_sync().")));

	rs.auto_conf = rk_auto_conf_snapshot(&rs.auto_conf_len);
	rk_guarded(remove_standby_steps, remove_standby_undo, &rs);
	rk_registry_event("remove_standby", rs.name, "removed from the registry, slot dropped");
	rk_wake_worker();
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("removed standby \"%s\"", rs.name)));
}

typedef struct SetSync
{
	const char *method;
	int			num_sync;
	char	   *result;
	char	   *auto_conf;
	size_t		auto_conf_len;
} SetSync;

static void
set_sync_steps(void *arg)
{
	SetSync    *ss = arg;
	const char *args[2] = {ss->method, psprintf("%d", ss->num_sync)};

	run_sql(psprintf("UPDATE %s SET sync_method = $1, num_sync = $2::int", rk_table("rk_cluster")),
			2, args, SPI_OK_UPDATE);
	ss->result = rk_apply_sync_names();
}

static void
set_sync_undo(void *arg)
{
	SetSync    *ss = arg;

	rk_auto_conf_restore(ss->auto_conf, ss->auto_conf_len);
	rk_reload_config();
}

/*
 * rk_set_sync(method, num_sync): the synchronous policy, FIRST n or ANY n
 * over the synchronous standbys; 0 makes replication asynchronous.  Stored
 * in the registry so that a new primary applies the same policy.
 */
Datum
rk_set_sync(PG_FUNCTION_ARGS)
{
	SetSync		ss = {0};
	char	   *method = ARG_TEXT_OR_NULL(0);
	int			sync_count;
	char	   *streaming;

	rk_require_superuser("rk_set_sync");
	rk_require_primary("rk_set_sync");
	rk_require_not_in_transaction_block("rk_set_sync");
	if (method == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("synchronous method must not be null"),
				 errdetail("The method is FIRST (priority order) or ANY (quorum).")));
	if (pg_strcasecmp(method, "FIRST") != 0 && pg_strcasecmp(method, "ANY") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid synchronous method \"%s\"", method),
				 errdetail("The method is FIRST (priority order) or ANY (quorum).")));
	ss.method = pg_strcasecmp(method, "FIRST") == 0 ? "FIRST" : "ANY";
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("num_sync must not be null"),
				 errhint("Pass 0 for asynchronous replication.")));
	ss.num_sync = PG_GETARG_INT32(1);
	if (!rk_registry_has_primary(NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is not set up as a primary yet"),
				 errhint("Run rk_setup_primary() first.")));
	sync_count = rk_registry_sync_standby_count();
	if (ss.num_sync < 0 || ss.num_sync > sync_count)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid number of synchronous standbys: %d", ss.num_sync),
				 errdetail("%d registered standby%s may be synchronous; the count must be from 0 to %d.",
						   sync_count, sync_count == 1 ? "" : "s", sync_count)));
	rk_commit_locally();

	ss.auto_conf = rk_auto_conf_snapshot(&ss.auto_conf_len);
	rk_guarded(set_sync_steps, set_sync_undo, &ss);
	rk_registry_event("set_sync", NULL,
					  psprintf("synchronous_standby_names = '%s'", ss.result));

	streaming = rk_query_value(psprintf("SELECT count(*) FROM pg_catalog.pg_stat_replication r JOIN %s n "
										"ON n.node_name = r.application_name AND n.sync AND n.role = 'standby' "
										"WHERE r.state = 'streaming'", rk_table("rk_nodes")),
							   0, NULL, NULL);
	if (ss.num_sync > 0 && atoi(streaming) < ss.num_sync)
		ereport(NOTICE,
				(errmsg("commits will wait until %d synchronous standby%s stream%s; %s stream%s now",
						ss.num_sync, ss.num_sync == 1 ? "" : "s", ss.num_sync == 1 ? "s" : "",
						streaming, atoi(streaming) == 1 ? "s" : "")));
	PG_RETURN_TEXT_P(cstring_to_text(ss.result));
}
