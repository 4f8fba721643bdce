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
 * Whoever holds the streaming password can read every file a base backup
 * holds and every WAL record, so the node secret is in neither: it lives in
 * RK_NODE_PASS_FILE, which BASE_BACKUP skips, and the database keeps only
 * its SCRAM verifier (which does not let anyone log in).  A node that lacks
 * it (a fresh clone, a node rewound) says so in its answers, and a node
 * that has it hands it over (rk_peer_secret); the receiver checks it
 * against the verifier before it keeps it, so nothing else can be planted.
 *
 * The replication password is kept in rk_credentials (superusers only),
 * written on the primary and replicated with the registry.  Every node's
 * worker renders that table into its password file (RK_PASS_FILE) each
 * round, so a new password reaches every standby with the WAL that changed
 * the role.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/xlog.h"
#include "catalog/pg_control.h"
#include "catalog/pg_type.h"
#include "common/controldata_utils.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "libpq/crypt.h"
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
 * Make a file of secrets readable by the server user only, if it exists and
 * is not; true if it is (or does not exist) afterwards.
 */
static bool
narrow_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0 || (st.st_mode & 07777) == (S_IRUSR | S_IWUSR))
		return true;
	if (chmod(path, S_IRUSR | S_IWUSR) == 0)
		return true;
	ereport(WARNING,
			(errcode_for_file_access(),
			 errmsg(RK_LOG_PREFIX "could not make \"%s\" readable by the server user only: %m", path)));
	return false;
}

/* Is the installed extension at `version` ("1.4") or later? */
bool
rk_extension_at_least(const char *version)
{
	char	   *have = rk_query_value("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = '"
									  RK_EXTENSION_NAME "'", 0, NULL, NULL);
	int			have_major,
				have_minor,
				want_major,
				want_minor;

	if (have == NULL || sscanf(have, "%d.%d", &have_major, &have_minor) != 2 ||
		sscanf(version, "%d.%d", &want_major, &want_minor) != 2)
		return false;
	return have_major > want_major || (have_major == want_major && have_minor >= want_minor);
}

/*
 * Is the extension at 1.3 or later, so that rk_credentials is its own table?
 * A table of that name found by name alone could be anyone's (a view that
 * runs a function as the worker's superuser, planted before the update).
 */
bool
rk_credentials_table_ready(void)
{
	return rk_extension_at_least("1.3");
}

/*
 * In the worker, after it took a password from another node: what its own
 * rk_credentials said then (a hash of the password file they make), which
 * rk_credentials_sync_passfile must not go back to.  Replaying the change
 * makes the tables say something else, and from then on they rule again.
 */
static char *passfile_password(const char *path, const char *role);

static bool taken_over = false;
static uint32 taken_over_hash = 0;

/*
 * The password file as rk_credentials says it should read, or NULL when the
 * extension is older than 1.3 or the table is empty.  The caller is in a
 * transaction.
 */
static char *
credentials_passfile(void)
{
	StringInfoData buf;
	int			ret;

	if (!rk_credentials_table_ready())
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
 * Make the password file hold exactly `want` (mode 0600, durably); returns
 * whether it was rewritten.  A clone made with group access may have a
 * wider mode: that is narrowed too.
 */
static bool
write_passfile(const char *want)
{
	size_t		have_len = 0;
	char	   *have = rk_read_whole_file(RK_PASS_FILE, &have_len);
	bool		same = have != NULL && have_len == strlen(want) && memcmp(have, want, have_len) == 0;

	if (same && !narrow_mode(RK_PASS_FILE))
		same = false;
	if (!same)
		rk_durable_write(RK_PASS_FILE, want, strlen(want), S_IRUSR | S_IWUSR);
	if (have)
		memset(have, 0, have_len);
	return !same;
}

/*
 * Make the password file say what rk_credentials says.  Returns true when
 * the file was rewritten.  The caller is in a transaction.
 */
bool
rk_credentials_sync_passfile(void)
{
	char	   *want = credentials_passfile();
	bool		changed;

	if (want == NULL)
		return false;
	/* Not back to what this node's tables said when it took a newer one. */
	if (taken_over)
	{
		if (hash_bytes((const unsigned char *) want, strlen(want)) == taken_over_hash)
			return false;
		taken_over = false;
	}
	changed = write_passfile(want);
	memset(want, 0, strlen(want));
	return changed;
}

/*
 * The replication role named in the registry and its password in
 * rk_credentials; false if either is missing.  The caller is in a
 * transaction.
 */
bool
rk_credentials_current(char **role, char **password)
{
	char	   *repl = rk_registry_replication_role();
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];

	if (repl == NULL || !rk_credentials_table_ready())
		return false;
	values[0] = CStringGetTextDatum(repl);
	*password = rk_query_value(psprintf("SELECT password FROM %s WHERE role = $1", rk_table("rk_credentials")),
							   1, argtypes, values);
	/* Set from a verifier: the password is only in the password files the clones made. */
	if (*password == NULL)
		*password = passfile_password(RK_PASS_FILE, repl);
	if (*password == NULL || strpbrk(*password, "\r\n") != NULL)
		return false;
	*role = repl;
	return true;
}

/*
 * Write the password file for `role` with `password`, received from another
 * node (rk_peer_credentials), unless the role is not this node's
 * replication role.  Returns whether the file changed.  The caller is in a
 * transaction.
 */
bool
rk_credentials_take(const char *role, const char *password)
{
	char	   *repl = rk_registry_replication_role();
	StringInfoData want;
	bool		changed;

	if (repl == NULL || strcmp(repl, role) != 0 || password[0] == '\0' ||
		strpbrk(password, "\r\n") != NULL)
		return false;
	initStringInfo(&want);
	append_passfile_line(&want, role, password);
	changed = write_passfile(want.data);
	if (changed)
	{
		char	   *local = credentials_passfile();

		taken_over = local != NULL;
		if (local)
		{
			taken_over_hash = hash_bytes((const unsigned char *) local, strlen(local));
			memset(local, 0, strlen(local));
		}
	}
	memset(want.data, 0, want.len);
	return changed;
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

/* The password a libpq password file `path` holds for `role`, or NULL. */
static char *
passfile_password(const char *path, const char *role)
{
	size_t		len;
	char	   *content = rk_read_whole_file(path, &len);
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
 * Whether the password file has a line for `role`.  Readable in the
 * postmaster, before any catalog can be.
 */
bool
rk_passfile_has_role(const char *role)
{
	char	   *password = passfile_password(RK_PASS_FILE, role);

	if (password == NULL)
		return false;
	memset(password, 0, strlen(password));
	return true;
}

/* The node role's secret as this node keeps it, or NULL. */
char *
rk_node_secret(void)
{
	char	   *secret = passfile_password(RK_NODE_PASS_FILE, RK_NODE_ROLE);

	if (secret != NULL && (secret[0] == '\0' || strspn(secret, "0123456789abcdef") != strlen(secret)))
		secret = NULL;			/* not one the kit made */
	return secret;
}

/*
 * The secret file is readable by the server user only, whatever made it (a
 * pg_rewind copies the source's with the cluster's file mode, which group
 * access widens).
 */
void
rk_node_secret_narrow_mode(void)
{
	narrow_mode(RK_NODE_PASS_FILE);
}

/* Keep `secret` as the node role's, durably, readable by the server user only. */
void
rk_node_secret_write(const char *secret)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_passfile_line(&buf, RK_NODE_ROLE, secret);
	rk_durable_write(RK_NODE_PASS_FILE, buf.data, buf.len, S_IRUSR | S_IWUSR);
	memset(buf.data, 0, buf.len);
}

/*
 * Is `secret` the node role's password, by the verifier in pg_authid?  The
 * caller is in a transaction.
 */
bool
rk_node_secret_valid(const char *secret)
{
	rk_logdetail logdetail = NULL;
	char	   *shadow;

	if (secret == NULL || !OidIsValid(get_role_oid(RK_NODE_ROLE, true)))
		return false;
	shadow = get_role_password(RK_NODE_ROLE, &logdetail);
	if (shadow == NULL)
		return false;
	return plain_crypt_verify(RK_NODE_ROLE, shadow, secret, &logdetail) == STATUS_OK;
}

/*
 * The password a node-to-node call as `user` logs in with: the node secret
 * for the node role, else what the password file holds.  Passed to libpq
 * explicitly, which would otherwise prefer a PGPASSWORD that the server
 * happened to be started with.
 */
char *
rk_peer_password(const char *user)
{
	if (strcmp(user, RK_NODE_ROLE) == 0)
		return rk_node_secret();
	return passfile_password(RK_PASS_FILE, user);
}

/*
 * The user the node-to-node calls go out as: the node role once this node
 * has its secret, else (a cluster set up before version 1.3, until
 * rk_create_replicator() runs again) the replication role, which peers then
 * still accept.
 */
const char *
rk_peer_user(const char *repl_role)
{
	if (rk_node_secret() != NULL)
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
	/* Logged in as it: not a role that SET ROLE to it. */
	if (OidIsValid(node))
		return GetUserId() == node && GetSessionUserId() == node;
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

	if (sysid[0] == '\0' && IsUnderPostmaster)
		snprintf(sysid, sizeof(sysid), UINT64_FORMAT, GetSystemIdentifier());
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
 * node role's calls must carry it.  It is no secret (IDENTIFY_SYSTEM tells
 * any replication role): it keeps clusters apart, it authenticates nobody.
 */
void
rk_require_same_cluster(const char *funcname)
{
	const char *theirs = rk_peer_system_identifier;

	if (theirs == NULL || theirs[0] == '\0')
	{
		/* Only the node role's calls carry it (an older library's do not). */
		if (superuser() || GetUserId() != get_role_oid(RK_NODE_ROLE, true))
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
