/*-------------------------------------------------------------------------
 *
 * registry.c
 *		The node registry: the extension's tables rk_nodes, rk_cluster and
 *		rk_events, read and written through SPI, and the validation of
 *		everything that goes into them.
 *
 * The registry is written only on the primary and reaches the standbys by
 * physical replication, so every node can read the topology, including a
 * standby deciding whom to promote after the primary died.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "core/config.h"
#include "core/registry.h"
#include "core/shmem.h"

/*
 * Node names are also replication slot names, application_name values and
 * members of synchronous_standby_names, so they follow the strictest of the
 * three: lower case letters, digits and underscores.
 */
void
rk_validate_node_name(const char *name)
{
	size_t		len;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("node name must not be null")));
	len = strlen(name);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("node name must not be empty")));
	if (len >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("node name is too long"),
				 errdetail("A node name is at most %d bytes; it is also the name of the node's replication slot.",
						   NAMEDATALEN - 1)));
	for (size_t i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid node name \"%s\"", name),
					 errdetail("A node name may contain only lower case letters, digits and underscores, and must not start with a digit."),
					 errhint("The name is also used as the replication slot name and the standby's application_name.")));
	}
}

/* A role name the kit writes unquoted into pg_hba.conf and SQL. */
void
rk_validate_role_name(const char *role)
{
	size_t		len;

	if (role == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role name must not be null")));
	len = strlen(role);
	if (len == 0 || len >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid role name \"%s\"", role),
				 errdetail("A role name must be 1 to %d bytes long.", NAMEDATALEN - 1)));
	for (size_t i = 0; i < len; i++)
	{
		char		c = role[i];

		if (!((c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid role name \"%s\"", role),
					 errdetail("The replication role's name may contain only lower case letters, digits and underscores, and must not start with a digit.")));
	}
	if (strcmp(role, "all") == 0 || strcmp(role, "replication") == 0 ||
		strcmp(role, "public") == 0 || strncmp(role, "pg_", 3) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("role name \"%s\" is reserved", role),
				 errdetail("It is a keyword in pg_hba.conf or a reserved role name.")));
}

/*
 * A host other nodes use to reach this one: an IPv4 or IPv6 address or a
 * DNS name.  Nothing that could break a libpq multi-host string (commas,
 * spaces, quotes) gets through.
 */
/* Is `host` an IPv4 or IPv6 address written as such (not a DNS name)? */
bool
rk_host_is_address(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

void
rk_validate_host(const char *host)
{
	size_t		len;

	if (host == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("host must not be null")));
	len = strlen(host);
	if (rk_host_is_address(host))
		return;
	if (len == 0 || len > 253 || host[0] == '-' || host[0] == '.')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid host \"%s\"", host),
				 errdetail("A host is an IP address or a DNS name of at most 253 characters.")));
	for (size_t i = 0; i < len; i++)
	{
		char		c = host[i];

		if (!(isalnum((unsigned char) c) || c == '-' || c == '.'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid host \"%s\"", host),
					 errdetail("A host name may contain only letters, digits, hyphens and dots.")));
	}
	/*
	 * Not an address, and not a DNS name either: "10.1" or "1234" would be
	 * read as an IPv4 address by some readers (inet_aton) and as a name by
	 * others.
	 */
	if (strspn(host, "0123456789.") == len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid host \"%s\"", host),
				 errdetail("It is neither an IP address in full nor a DNS name."),
				 errhint("Write an IPv4 address with four numbers, such as 192.0.2.10.")));
	/* Written into pg_hba.conf, these would mean "any address". */
	if (pg_strcasecmp(host, "all") == 0 || pg_strcasecmp(host, "samehost") == 0 ||
		pg_strcasecmp(host, "samenet") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid host \"%s\"", host),
				 errdetail("\"%s\" is a pg_hba.conf keyword, not a host.", host),
				 errhint("Give the node's IP address or its DNS name.")));
}

void
rk_validate_port(bool isnull, int32 port)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("port must not be null")));
	if (port < 1 || port > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid port %d", port),
				 errdetail("A port is a number from 1 to 65535.")));
}

/* The schema the extension was installed in. */
const char *
rk_schema(void)
{
	Oid			ext = get_extension_oid(RK_EXTENSION_NAME, false);
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(nsp))
		elog(ERROR, "extension %s has no schema", RK_EXTENSION_NAME);
	return get_namespace_name(nsp);
}

/* "schema.relation" for a table of the extension, wherever it was installed. */
const char *
rk_table(const char *relname)
{
	return quote_qualified_identifier(rk_schema(), relname);
}

/* Run a one-value query; returns a copy of the value or NULL. */
char *
rk_query_value(const char *sql, int nargs, Oid *argtypes, Datum *values)
{
	int			ret;
	char	   *result = NULL;

	/* Not read-only: the caller may have just changed the registry. */
	SPI_connect();
	ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "registry query failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v != NULL)
			result = MemoryContextStrdup(CurTransactionContext, v);
	}
	SPI_finish();
	return result;
}

bool
rk_registry_has_primary(char **primary_name)
{
	char	   *name = rk_query_value(psprintf("SELECT node_name FROM %s WHERE role = 'primary'",
											   rk_table("rk_nodes")),
									  0, NULL, NULL);

	if (primary_name)
		*primary_name = name;
	return name != NULL;
}

/* Are nodes other than `self` registered? */
bool
rk_registry_has_other_nodes(const char *self)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(self)};

	return rk_query_value(psprintf("SELECT 1 FROM %s WHERE node_name <> $1 LIMIT 1", rk_table("rk_nodes")),
						  1, argtypes, values) != NULL;
}

char *
rk_registry_replication_role(void)
{
	return rk_query_value(psprintf("SELECT replication_role FROM %s", rk_table("rk_cluster")),
						  0, NULL, NULL);
}

int
rk_registry_sync_standby_count(void)
{
	char	   *v = rk_query_value(psprintf("SELECT count(*) FROM %s WHERE role = 'standby' AND sync",
											rk_table("rk_nodes")),
								   0, NULL, NULL);

	return v ? atoi(v) : 0;
}

/*
 * synchronous_standby_names as the registry defines it, with `primary` as
 * the primary (NULL: the one the registry names): the other nodes with the
 * sync flag in registration order under the stored policy, or '' when the
 * policy asks for no synchronous standby.  A node about to be promoted
 * asks for its own list while still a standby.
 * Built with format(), not ||, so that no operator from the search path
 * can stand in.
 */
char *
rk_sync_names_for(const char *primary)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(primary ? primary : "")};
	char	   *v;

	v = rk_query_value(psprintf("SELECT CASE WHEN c.num_sync OPERATOR(pg_catalog.=) 0 OR n.names IS NULL THEN '' "
								"ELSE pg_catalog.format('%%s %%s (%%s)', c.sync_method, c.num_sync, n.names) END "
								"FROM %s c, LATERAL (SELECT pg_catalog.string_agg(node_name, ', ' ORDER BY node_id) AS names "
								"FROM %s WHERE sync AND node_name OPERATOR(pg_catalog.<>) "
								"CASE WHEN $1 OPERATOR(pg_catalog.=) '' THEN "
								"(SELECT p.node_name FROM %s p WHERE p.role OPERATOR(pg_catalog.=) 'primary') "
								"ELSE $1 END) n",
								rk_table("rk_cluster"), rk_table("rk_nodes"), rk_table("rk_nodes")),
					   1, argtypes, values);
	return v ? v : pstrdup("");
}

/*
 * Record an event in rk_events (on the primary; a standby cannot write, and
 * its events go to the server log only) and in the server log, with the
 * kit's prefix either way.
 */
void
rk_registry_event(const char *kind, const char *node, const char *detail)
{
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			ret;

	/* Never the calling statement: it may hold a password. */
	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "%s%s%s: %s", kind, node ? " " : "", node ? node : "",
					detail ? detail : ""),
			 errhidestmt(true)));
	if (RecoveryInProgress())
		return;

	values[0] = CStringGetTextDatum(kind);
	if (node)
		values[1] = CStringGetTextDatum(node);
	else
		nulls[1] = 'n';
	if (detail)
		values[2] = CStringGetTextDatum(detail);
	else
		nulls[2] = 'n';

	LWLockAcquire(rk_shared->lock, LW_SHARED);
	values[3] = Int64GetDatum((int64) rk_shared->state.term);
	LWLockRelease(rk_shared->lock);

	SPI_connect();
	ret = SPI_execute_with_args(psprintf("INSERT INTO %s (kind, node_name, detail, term) VALUES ($1, $2, $3, $4)",
										 rk_table("rk_events")),
								4, argtypes, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record event: %s", SPI_result_code_string(ret));
	SPI_finish();
}

/*
 * Make synchronous_standby_names what the registry says it should be, with
 * ALTER SYSTEM and a reload.  Returns the value.  Also used by a new
 * primary's worker right after promotion.
 */
char *
rk_apply_sync_names(void)
{
	return rk_apply_sync_names_for(NULL);
}

/* The same for `primary` as the primary (NULL: the registry's). */
char *
rk_apply_sync_names_for(const char *primary)
{
	char	   *wanted = rk_sync_names_for(primary);
	char	   *in_file = rk_file_setting_value("synchronous_standby_names");

	if (in_file == NULL ? wanted[0] != '\0' : strcmp(in_file, wanted) != 0)
	{
		rk_alter_system("synchronous_standby_names", wanted[0] ? wanted : NULL);
		rk_reload_config();
	}
	return wanted;
}
