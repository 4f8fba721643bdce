/*-------------------------------------------------------------------------
 *
 * credentials.c
 *		The two credentials the kit keeps, and the password file that holds
 *		them on every node.
 *
 * The replication role streams WAL; its password is one an operator chose
 * and types into pg_basebackup.  The node role (RK_NODE_ROLE) is what the
 * workers call each other's node-to-node functions and pg_rewind's source
 * as: its secret is made here from random bytes and no person ever types
 * or sees it.  Only the node role may call those functions, so the
 * streaming password alone cannot fence, promote or out-vote anybody.
 *
 * Both passwords are kept in rk_credentials, a table no one but superusers
 * can read, written on the primary and replicated like the rest of the
 * registry.  Every node's worker renders that table into its password file
 * (RK_PASS_FILE) each round, so a new password reaches every standby with
 * the WAL that changed the role, and a standby cloned before the change
 * does not silently lose its way to its peers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "catalog/pg_control.h"
#include "catalog/pg_type.h"
#include "common/controldata_utils.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "core/credentials.h"
#include "core/durable.h"
#include "core/registry.h"
#include "core/settings.h"

/* One line of a libpq password file for `role`, valid on any host. */
static void
append_passfile_line(StringInfo buf, const char *role, const char *password)
{
	appendStringInfo(buf, "*:*:*:%s:", role);
	for (const char *p = password; *p; p++)
	{
		if (*p == ':' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\n');
}

/*
 * The password file as rk_credentials says it should read, or NULL when the
 * table does not exist (an extension not yet updated to 1.3) or is empty.
 * The caller is in a transaction.
 */
static char *
credentials_passfile(void)
{
	StringInfoData buf;
	int			ret;

	if (rk_query_value(psprintf("SELECT pg_catalog.to_regclass(%s)",
								quote_literal_cstr(rk_table("rk_credentials"))), 0, NULL, NULL) == NULL)
		return NULL;

	initStringInfo(&buf);
	SPI_connect();
	ret = SPI_execute(psprintf("SELECT role, password FROM %s ORDER BY role", rk_table("rk_credentials")),
					  true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read %s: %s", rk_table("rk_credentials"), SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *role = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *password = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		/* Written by rk_create_replicator, which refuses both; never trusted blindly. */
		if (role == NULL || password == NULL || strpbrk(password, "\r\n") != NULL)
			continue;
		append_passfile_line(&buf, role, password);
	}
	SPI_finish();
	if (buf.len == 0)
		return NULL;
	return buf.data;
}

/*
 * Make the password file say what rk_credentials says.  Returns true when
 * the file was rewritten.  The caller is in a transaction.
 */
bool
rk_credentials_sync_passfile(void)
{
	char	   *want = credentials_passfile();
	char	   *have;
	size_t		have_len = 0;
	bool		same;

	if (want == NULL)
		return false;
	have = rk_read_whole_file(RK_PASS_FILE, &have_len);
	same = have != NULL && have_len == strlen(want) && memcmp(have, want, have_len) == 0;
	if (!same)
		rk_durable_write(RK_PASS_FILE, want, strlen(want), S_IRUSR | S_IWUSR);
	if (have)
		memset(have, 0, have_len);
	memset(want, 0, strlen(want));
	return !same;
}

/* Record `role`'s password in rk_credentials.  The caller is in a transaction. */
void
rk_credentials_store(const char *role, const char *password)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(role), CStringGetTextDatum(password)};
	int			ret;

	SPI_connect();
	ret = SPI_execute_with_args(psprintf("INSERT INTO %s (role, password) VALUES ($1, $2) "
										 "ON CONFLICT (role) DO UPDATE SET password = excluded.password",
										 rk_table("rk_credentials")),
								2, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record the password of \"%s\": %s", role, SPI_result_code_string(ret));
	SPI_finish();
}

/* The password rk_credentials holds for `role`, or NULL. */
char *
rk_credentials_password(const char *role)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(role)};

	return rk_query_value(psprintf("SELECT password FROM %s WHERE role = $1", rk_table("rk_credentials")),
						  1, argtypes, values);
}

/* A new secret for the node role: 32 random bytes, as hex. */
char *
rk_credentials_new_secret(void)
{
	uint8		bytes[32];
	char	   *hex = palloc(sizeof(bytes) * 2 + 1);

	if (!pg_strong_random(bytes, sizeof(bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a secret for the node role")));
	for (int i = 0; i < (int) sizeof(bytes); i++)
		snprintf(hex + i * 2, 3, "%02x", bytes[i]);
	memset(bytes, 0, sizeof(bytes));
	return hex;
}

/*
 * Whether the password file has a line for `role`.  Readable in the
 * postmaster, before any catalog can be.
 */
bool
rk_passfile_has_role(const char *role)
{
	size_t		len;
	char	   *content = rk_read_whole_file(RK_PASS_FILE, &len);
	char	   *prefix = psprintf("*:*:*:%s:", role);
	bool		found = false;

	if (content == NULL)
		return false;
	for (char *line = content; line && *line;)
	{
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			found = true;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	memset(content, 0, len);
	return found;
}

/*
 * The password the password file holds for `role`, or NULL.  The node-to-node
 * calls pass it explicitly: libpq would otherwise prefer a PGPASSWORD the
 * server happened to be started with over the file.
 */
char *
rk_passfile_password(const char *role)
{
	size_t		len;
	char	   *content = rk_read_whole_file(RK_PASS_FILE, &len);
	char	   *prefix = psprintf("*:*:*:%s:", role);
	char	   *password = NULL;

	if (content == NULL)
		return NULL;
	for (char *line = content; line && *line && password == NULL;)
	{
		char	   *nl = strchr(line, '\n');

		if (strncmp(line, prefix, strlen(prefix)) == 0)
		{
			StringInfoData buf;

			initStringInfo(&buf);
			for (char *p = line + strlen(prefix); *p && *p != '\n'; p++)
			{
				if (*p == '\\' && p[1] && p[1] != '\n')
					p++;
				appendStringInfoChar(&buf, *p);
			}
			password = buf.data;
		}
		line = nl ? nl + 1 : NULL;
	}
	memset(content, 0, len);
	return password;
}

/*
 * The user the node-to-node calls go out as: the node role once this
 * node's password file holds its secret, else (a cluster set up before
 * version 1.3, until rk_create_replicator() runs again) the replication
 * role, which peers then still accept.
 */
const char *
rk_peer_user(const char *repl_role)
{
	if (rk_passfile_has_role(RK_NODE_ROLE))
		return RK_NODE_ROLE;
	return repl_role;
}

/*
 * Whether the current user may call the node-to-node functions: a
 * superuser, or the node role.  While the node role does not exist (a
 * cluster from before 1.3), a replication role still may.
 */
bool
rk_is_node_caller(void)
{
	Oid			node = get_role_oid(RK_NODE_ROLE, true);

	if (superuser())
		return true;
	if (OidIsValid(node))
		return GetUserId() == node;
	return has_rolreplication(GetUserId());
}

/*
 * This node's database system identifier, as text: the same on every node
 * cloned from one initdb, different on a cluster made by another.  Read
 * from pg_control once per process (the postmaster's fence at start needs
 * it before shared memory exists).
 */
const char *
rk_system_identifier(void)
{
	static char sysid[32];

	if (sysid[0] == '\0')
	{
		bool		crc_ok;
		ControlFileData *control = get_controlfile(DataDir, &crc_ok);

		if (!crc_ok)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("calculated CRC checksum does not match value stored in file \"%s\"",
							"global/pg_control")));
		snprintf(sysid, sizeof(sysid), UINT64_FORMAT, control->system_identifier);
		pfree(control);
	}
	return sysid;
}

/*
 * A node-to-node call carries its caller's system identifier (the kit sets
 * replication_kit.peer_system_identifier on its connections).  A node from
 * another cluster (a copy of PGDATA's password file and peer list in a data
 * directory of another initdb) is refused before it can say anything.  The
 * node role's calls must carry it; a superuser's may leave it out.
 */
void
rk_require_same_cluster(const char *funcname)
{
	const char *theirs = rk_peer_system_identifier;

	if (theirs == NULL || theirs[0] == '\0')
	{
		if (superuser())
			return;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", funcname),
				 errdetail("The call does not say which cluster its caller belongs to."),
				 errhint("Only the kit's workers call the node-to-node functions.")));
	}
	if (strcmp(theirs, rk_system_identifier()) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s: the caller is a node of another cluster", funcname),
				 errdetail("The caller belongs to the database system %s; this node to %s.",
						   theirs, rk_system_identifier()),
				 errhint("A node of another cluster (another initdb) takes no part here.")));
}
