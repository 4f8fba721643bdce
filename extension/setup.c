/*-------------------------------------------------------------------------
 *
 * setup.c
 *		Preparing a primary (the walkthrough's steps 4-7): replication
 *		settings, the replication role, and the pg_hba.conf lines that let
 *		the standbys in.
 *
 *		rk_setup_primary(node_name, host, port, max_standbys)
 *		rk_create_replicator(role_name, password)
 *		rk_allow_replication(address, role_name, method, force)
 *		rk_revoke_replication(address, role_name)
 *
 * Each validates all of its input before it changes anything, and puts
 * back what it changed if a later step fails.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/crypt.h"

#include "postmaster/postmaster.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/scram.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/guc.h"

#include "core/config.h"
#include "core/conninfo.h"
#include "core/credentials.h"
#include "core/node_state.h"
#include "core/registry.h"
#include "core/settings.h"
#include "core/shmem.h"
#include "extension/extension.h"

PG_FUNCTION_INFO_V1(rk_setup_primary);
PG_FUNCTION_INFO_V1(rk_create_replicator);
PG_FUNCTION_INFO_V1(rk_allow_replication);
PG_FUNCTION_INFO_V1(rk_revoke_replication);

/* Text argument or NULL. */
#define ARG_TEXT_OR_NULL(n) (PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n)))

/* One setting rk_setup_primary wants, and whether the current value will do. */
/* At most this many settings are asked for. */
#define RK_SETUP_SETTINGS 11

typedef struct WantedSetting
{
	const char *name;
	char	   *value;			/* what the kit sets */
	bool		(*ok) (const char *current, const struct WantedSetting *w);
	int			min;			/* for integer settings */
	bool		restart;		/* takes effect only at server start */
} WantedSetting;

static bool
ok_equal(const char *cur, const WantedSetting *w)
{
	return cur != NULL && pg_strcasecmp(cur, w->value) == 0;
}

static bool
ok_wal_level(const char *cur, const WantedSetting *w)
{
	return cur != NULL && (strcmp(cur, "replica") == 0 || strcmp(cur, "logical") == 0);
}

static bool
ok_at_least(const char *cur, const WantedSetting *w)
{
	return cur != NULL && atoi(cur) >= w->min;
}

static bool
ok_bool_on(const char *cur, const WantedSetting *w)
{
	bool		b;

	return cur != NULL && parse_bool(cur, &b) && b;
}

static bool
ok_bounded(const char *cur, const WantedSetting *w)
{
	return cur != NULL && strcmp(cur, "-1") != 0;
}

static bool
ok_sync_commit(const char *cur, const WantedSetting *w)
{
	return cur != NULL && (strcmp(cur, "on") == 0 || strcmp(cur, "remote_apply") == 0 ||
						   strcmp(cur, "remote_write") == 0);
}

/* State shared by the steps of rk_setup_primary and their undo. */
typedef struct SetupPrimary
{
	const char *node_name;
	const char *host;
	int			port;
	int			nwanted;
	WantedSetting *wanted;
	bool	   *change;
	char	   *auto_conf;
	size_t		auto_conf_len;
	bool		made_certificate;	/* server.crt and server.key are ours to remove */
} SetupPrimary;

/*
 * A server without TLS gets a self-signed certificate of its own, made with
 * the openssl command (Debian's PostgreSQL packages depend on it through
 * ssl-cert), where ssl_cert_file and ssl_key_file point: the kit's
 * connections then run over TLS with SCRAM channel binding, which no man in
 * the middle can relay and which never hands a password over in cleartext.
 * Clones copy both files.  Nothing is verified against a CA: for that, see
 * replication_kit.sslmode = verify-full.  Returns false (and says why) when
 * no certificate could be made; the server then stays without TLS.
 */
static bool
make_server_certificate(SetupPrimary *sp)
{
	const char *cert = GetConfigOption("ssl_cert_file", false, false);
	const char *key = GetConfigOption("ssl_key_file", false, false);
	struct stat st;
	int			rc;

	bool		have_cert = stat(cert, &st) == 0;
	bool		have_key = stat(key, &st) == 0;

	if (have_cert && have_key)
		return true;
	/* Half a pair, or files outside PGDATA that a clone would not copy. */
	if (have_cert || have_key || is_absolute_path(cert) || is_absolute_path(key))
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("ssl stays off: %s", have_cert || have_key ?
						"only one of ssl_cert_file and ssl_key_file exists" :
						"ssl_cert_file or ssl_key_file lies outside the data directory, where clones do not copy it"),
				 errdetail("Without TLS, the kit's connections are not encrypted and a man in the middle can ask for a password in cleartext."),
				 errhint("Give every node a certificate and ssl = on, then call rk_setup_primary() again.")));
		return false;
	}
	fflush(NULL);
	rc = system(psprintf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
						 "-days 36500 -subj /CN=replication_kit -keyout %s -out %s >/dev/null 2>&1",
						 rk_shell_quote(key), rk_shell_quote(cert)));
	if (rc != 0 || chmod(key, S_IRUSR | S_IWUSR) != 0 || stat(cert, &st) != 0)
	{
		(void) unlink(key);
		(void) unlink(cert);
		ereport(WARNING,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("ssl stays off: could not make a server certificate with openssl (status %d)", rc),
				 errdetail("Without TLS, the kit's connections are not encrypted and a man in the middle can ask for a password in cleartext."),
				 errhint("Install openssl (or give the server a certificate and ssl = on), then call rk_setup_primary() again.")));
		return false;
	}
	sp->made_certificate = true;
	return true;
}

static void
setup_primary_steps(void *arg)
{
	SetupPrimary *sp = arg;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, INT4OID};
	Datum		values[3];
	int			ret;

	values[0] = CStringGetTextDatum(sp->node_name);
	values[1] = CStringGetTextDatum(sp->host);
	values[2] = Int32GetDatum(sp->port);

	SPI_connect();
	ret = SPI_execute_with_args(psprintf(
										 "INSERT INTO %s (node_id, node_name, host, port, role, sync, joined_at) "
										 "VALUES (1, $1, $2, $3, 'primary', true, now()) "
										 "ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, port = excluded.port",
										 rk_table("rk_nodes")),
								3, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not register the primary: %s", SPI_result_code_string(ret));
	ret = SPI_execute(psprintf("INSERT INTO %s (one_row) VALUES (true) ON CONFLICT DO NOTHING",
							   rk_table("rk_cluster")), false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not initialise rk_cluster: %s", SPI_result_code_string(ret));
	SPI_finish();

	for (int i = 0; i < sp->nwanted; i++)
	{
		if (!sp->change[i])
			continue;
		if (strcmp(sp->wanted[i].name, "ssl") == 0 && !make_server_certificate(sp))
			continue;
		rk_alter_system(sp->wanted[i].name, sp->wanted[i].value);
	}

	/* Last, as it cannot be undone: this node is now known by this name. */
	rk_state_set_identity(sp->node_name, "primary");
	rk_state_start_term(sp->node_name);
}

static void
setup_primary_undo(void *arg)
{
	SetupPrimary *sp = arg;

	rk_auto_conf_restore(sp->auto_conf, sp->auto_conf_len);
	if (sp->made_certificate)
	{
		(void) unlink(GetConfigOption("ssl_key_file", false, false));
		(void) unlink(GetConfigOption("ssl_cert_file", false, false));
	}
}

/* Is `host` one that listen_addresses already covers? */
static bool
listen_covers(const char *listen, const char *host)
{
	char	   *copy = pstrdup(listen);
	char	   *save = NULL;
	bool		loopback = strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0 ||
		strcmp(host, "localhost") == 0;

	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
	{
		if (strcmp(tok, "*") == 0 || strcmp(tok, "0.0.0.0") == 0 || strcmp(tok, "::") == 0 ||
			strcmp(tok, host) == 0 || (loopback && strcmp(tok, "localhost") == 0))
			return true;
	}
	return false;
}

/* The settings rk_setup_primary() asks for; returns how many. */
static int
wanted_settings(WantedSetting *wanted, int max_standbys, const char *host, const char *sp_name)
{
	/* Each standby needs a WAL sender and a slot; two spare for clones and pg_rewind. */
	int			senders = max_standbys + 2;
	char	   *listen = rk_setting_value("listen_addresses");
	int			n = 0;

	wanted[n++] = (WantedSetting) {"wal_level", "replica", ok_wal_level, 0, true};
	wanted[n++] = (WantedSetting) {"max_wal_senders", psprintf("%d", senders), ok_at_least, senders, true};
	wanted[n++] = (WantedSetting) {"max_replication_slots", psprintf("%d", senders), ok_at_least, senders, true};
	wanted[n++] = (WantedSetting) {"hot_standby", "on", ok_bool_on, 0, true};
	wanted[n++] = (WantedSetting) {"wal_log_hints", "on", ok_bool_on, 0, true};
	wanted[n++] = (WantedSetting) {"max_slot_wal_keep_size", "4GB", ok_bounded, 0, false};
	/* pg_rewind reads the old primary's WAL back to the last common checkpoint. */
	wanted[n++] = (WantedSetting) {"wal_keep_size", "512MB", ok_at_least, 512, false};
	wanted[n++] = (WantedSetting) {"synchronous_commit", "on", ok_sync_commit, 0, false};
	/*
	 * The kit's own connections then use TLS with channel binding
	 * (settings.c).  Only before any standby is registered: the clones then
	 * copy the setting and the certificate.  Turned on here alone later, the
	 * primary would demand TLS of standbys that have none.
	 */
	if (!rk_registry_has_other_nodes(sp_name))
		wanted[n++] = (WantedSetting) {"ssl", "on", ok_bool_on, 0, false};
	else if (!EnableSSL)
		ereport(NOTICE,
				(errcode(ERRCODE_WARNING),
				 errmsg("ssl stays off: standbys are registered already"),
				 errdetail("The kit turns TLS on only in a cluster that has no standby yet, so that every clone has it."),
				 errhint("Turn ssl on on every node, and then set replication_kit.sslmode = require (see the README's Security section).")));
	if (!listen_covers(listen, host))
		wanted[n++] = (WantedSetting) {"listen_addresses",
			listen[0] ? psprintf("%s,%s", listen, host) : pstrdup(host), ok_equal, 0, true};
	Assert(n <= RK_SETUP_SETTINGS);
	return n;
}

/*
 * rk_setup_primary()'s arguments, checked: a valid name, host and port, a
 * sane max_standbys, and no other primary or standby by that name already.
 * Returns max_standbys.
 */
static int
setup_arguments(FunctionCallInfo fcinfo, SetupPrimary *sp)
{
	char	   *existing;
	int			max_standbys;

	sp->node_name = ARG_TEXT_OR_NULL(0);
	sp->host = ARG_TEXT_OR_NULL(1);
	rk_validate_node_name(sp->node_name);
	rk_validate_host(sp->host);
	rk_validate_port(PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2));
	sp->port = PG_GETARG_INT32(2);
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_standbys must not be null")));
	max_standbys = PG_GETARG_INT32(3);
	if (max_standbys < 1 || max_standbys > RK_MAX_NODES - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_standbys must be between 1 and %d", RK_MAX_NODES - 1)));

	/* Another primary already registered, or this name taken by a standby? */
	if (rk_registry_has_primary(&existing) && strcmp(existing, sp->node_name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("this cluster is already set up with primary \"%s\"", existing),
				 errhint("rk_status() shows the registered nodes; the primary keeps its name.")));
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(sp->node_name)};

		if (rk_query_value(psprintf("SELECT 1 FROM %s WHERE node_name = $1 AND role = 'standby'",
									rk_table("rk_nodes")), 1, argtypes, values))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("node \"%s\" is registered as a standby", sp->node_name)));
	}
	return max_standbys;
}

/*
 * rk_setup_primary(node_name, host, port, max_standbys): register this node
 * as the primary and set what streaming replication and the kit need.
 * Returns one row per setting it changed; a NOTICE names the settings
 * that wait for a restart.  Calling it again changes nothing.
 */
Datum
rk_setup_primary(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SetupPrimary sp = {0};
	int			max_standbys;
	WantedSetting wanted[RK_SETUP_SETTINGS];
	bool		change[RK_SETUP_SETTINGS] = {0};
	int			n;
	StringInfoData restart_list;

	rk_require_superuser("rk_setup_primary");
	rk_require_primary("rk_setup_primary");
	rk_require_not_in_transaction_block("rk_setup_primary");

	max_standbys = setup_arguments(fcinfo, &sp);
	n = wanted_settings(wanted, max_standbys, sp.host, sp.node_name);

	InitMaterializedSRF(fcinfo, 0);
	initStringInfo(&restart_list);
	for (int i = 0; i < n; i++)
	{
		WantedSetting *w = &wanted[i];
		char	   *running = rk_setting_value(w->name);
		char	   *in_file = rk_file_setting_value(w->name);
		bool		needs_restart = w->restart;

		if (in_file != NULL && w->ok(in_file, w))
		{
			/* Already asked for; maybe only waiting for a restart. */
			if (w->restart && !w->ok(running, w))
				appendStringInfo(&restart_list, "%s%s", restart_list.len ? ", " : "", w->name);
			continue;
		}
		if (in_file == NULL && w->ok(running, w))
			continue;

		change[i] = true;
		{
			Datum		values[4];
			bool		nulls[4] = {0};

			values[0] = CStringGetTextDatum(w->name);
			values[1] = CStringGetTextDatum(running);
			values[2] = CStringGetTextDatum(w->value);
			values[3] = BoolGetDatum(needs_restart);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		if (needs_restart)
			appendStringInfo(&restart_list, "%s%s", restart_list.len ? ", " : "", w->name);
	}

	rk_commit_locally();
	sp.nwanted = n;
	sp.wanted = wanted;
	sp.change = change;
	sp.auto_conf = rk_auto_conf_snapshot(&sp.auto_conf_len);
	rk_guarded(setup_primary_steps, setup_primary_undo, &sp);
	rk_reload_config();
	rk_registry_event("setup_primary", sp.node_name,
					  psprintf("registered as the primary at %s:%d", sp.host, sp.port));
	rk_wake_worker();

	if (restart_list.len > 0)
		ereport(NOTICE,
				(errmsg("restart the server to apply: %s", restart_list.data),
				 errdetail("These settings take effect only at server start."),
				 errhint("Restart with pg_ctl restart (or systemctl restart postgresql) before cloning standbys.")));
	return (Datum) 0;
}

typedef struct CreateReplicator
{
	const char *role;
	const char *password;
	bool		verifier;		/* `password` is a SCRAM verifier */
	bool		exists;
	const char *old_role;		/* the replication role before this call, or NULL */
	char	   *old_passfile;
	size_t		old_passfile_len;
	char	   *old_node_passfile;
	size_t		old_node_passfile_len;
	bool		node_secret_changed;
} CreateReplicator;

static void
run_utility(const char *sql, const char *what)
{
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not %s", what);
}

/*
 * The node role: made on first use with a random secret, kept (with its
 * secret) when the replication role's password changes, so that the nodes
 * never lose each other while the operator rotates the streaming password.
 * Whatever was set on the role by others is reset: it logs in, inherits
 * nothing, never expires, and its sessions log no statements (a node
 * handing the secret to another passes it as a parameter).
 */
static void
ensure_node_role(CreateReplicator *cr)
{
	char	   *secret = rk_node_secret();
	bool		exists = OidIsValid(get_role_oid(RK_NODE_ROLE, true));
	const char *role = quote_identifier(RK_NODE_ROLE);
	static const char *const quiet[] = {
		"log_statement = 'none'", "log_min_duration_statement = -1",
		"log_min_duration_sample = -1", "log_parameter_max_length = 0",
		"log_parameter_max_length_on_error = 0", "log_duration = off",
		"auto_explain.log_min_duration = -1", "pgaudit.log = 'none'",
	};

	if (!exists || !rk_node_secret_valid(secret))
	{
		secret = rk_credentials_new_secret();
		run_utility(psprintf(exists ? "ALTER ROLE %s WITH PASSWORD %s" : "CREATE ROLE %s WITH PASSWORD %s",
							 role, quote_literal_cstr(pg_be_scram_build_secret(secret))),
					"create the node role");
		cr->node_secret_changed = true;
		rk_node_secret_write(secret);
	}
	run_utility(psprintf("ALTER ROLE %s WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
						 "NOBYPASSRLS NOINHERIT CONNECTION LIMIT -1 VALID UNTIL 'infinity'", role),
				"set up the node role");
	run_utility(psprintf("ALTER ROLE %s RESET ALL", role), "reset the node role's settings");
	for (int i = 0; i < lengthof(quiet); i++)
		run_utility(psprintf("ALTER ROLE %s SET %s", role, quiet[i]), "set up the node role's logging");
	memset(secret, 0, strlen(secret));
}

/*
 * The node-to-node functions and what pg_rewind reads on its source go to
 * the node role only; a replication role that had them (a cluster from
 * before 1.3, or the one this call replaces) loses them.
 */
static void
grant_node_functions(const char *repl_role, const char *old_repl_role)
{
	const char *peer_functions = psprintf("%1$s.rk_peer_state(text, bigint, boolean), "
										  "%1$s.rk_request_vote(text, bigint, integer, pg_lsn, text), "
										  "%1$s.rk_peer_fence(text, bigint, boolean), "
										  "%1$s.rk_peer_failover(boolean, boolean, boolean), "
										  "%1$s.rk_peer_secret(text)%2$s%3$s",
										  quote_identifier(rk_schema()),
										  rk_extension_at_least("1.4") ?
										  psprintf(", %s.rk_peer_credentials(text)", quote_identifier(rk_schema())) : "",
										  rk_extension_at_least("1.6") ?
										  psprintf(", %s.rk_peer_resume(text, bigint)", quote_identifier(rk_schema())) : "");
	const char *rewind_functions = "pg_catalog.pg_ls_dir(text, boolean, boolean), "
		"pg_catalog.pg_stat_file(text, boolean), "
		"pg_catalog.pg_read_binary_file(text), "
		"pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)";

	run_utility(psprintf("GRANT EXECUTE ON FUNCTION %s, %s TO %s", peer_functions, rewind_functions,
						 quote_identifier(RK_NODE_ROLE)),
				"grant the node-to-node functions");
	run_utility(psprintf("REVOKE EXECUTE ON FUNCTION %s, %s FROM %s", peer_functions, rewind_functions,
						 quote_identifier(repl_role)),
				"revoke the node-to-node functions from the replication role");
	if (old_repl_role != NULL && strcmp(old_repl_role, repl_role) != 0 &&
		OidIsValid(get_role_oid(old_repl_role, true)))
		run_utility(psprintf("REVOKE EXECUTE ON FUNCTION %s, %s FROM %s", peer_functions, rewind_functions,
							 quote_identifier(old_repl_role)),
					"revoke the node-to-node functions from the former replication role");
}

static void
create_replicator_steps(void *arg)
{
	CreateReplicator *cr = arg;
	char	   *secret = cr->verifier ? pstrdup(cr->password) : pg_be_scram_build_secret(cr->password);
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(cr->role)};
	int			ret;

	SPI_connect();
	run_utility(psprintf(cr->exists ? "ALTER ROLE %s WITH LOGIN PASSWORD %s"
						 : "CREATE ROLE %s WITH LOGIN REPLICATION PASSWORD %s",
						 quote_identifier(cr->role), quote_literal_cstr(secret)),
				"create the replication role");
	ret = SPI_execute_with_args(psprintf("UPDATE %s SET replication_role = $1", rk_table("rk_cluster")),
								1, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "could not record the replication role: %s", SPI_result_code_string(ret));
	ensure_node_role(cr);
	grant_node_functions(cr->role, cr->old_role);

	/* The replication password, and no other, reaches every node's password file. */
	ret = SPI_execute_with_args(psprintf("DELETE FROM %s WHERE role <> $1%s", rk_table("rk_credentials"),
										 cr->verifier ? " OR true" : ""),
								1, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "could not update %s: %s", rk_table("rk_credentials"), SPI_result_code_string(ret));
	/* Given a verifier, the kit never learns the password: each clone brings it. */
	if (!cr->verifier)
		rk_credentials_store(cr->role, cr->password);
	SPI_finish();

	(void) rk_credentials_sync_passfile();
}

static void
create_replicator_undo(void *arg)
{
	CreateReplicator *cr = arg;

	if (cr->old_passfile)
		rk_durable_write(RK_PASS_FILE, cr->old_passfile, cr->old_passfile_len, S_IRUSR | S_IWUSR);
	else
		rk_durable_remove(RK_PASS_FILE);
	/* The node role's new password was rolled back with the transaction. */
	if (cr->node_secret_changed)
	{
		if (cr->old_node_passfile)
			rk_durable_write(RK_NODE_PASS_FILE, cr->old_node_passfile, cr->old_node_passfile_len,
							 S_IRUSR | S_IWUSR);
		else
			rk_durable_remove(RK_NODE_PASS_FILE);
	}
}

/*
 * rk_create_replicator(role_name, password): a LOGIN REPLICATION role with
 * a SCRAM password.  Calling it again for the kit's replication role sets
 * the password again.  It never turns a superuser or an ordinary role into
 * the replication role.  The password is never printed: the role is
 * created from a SCRAM secret computed here, so not even the statement the
 * kit runs contains it.
 */
static Datum create_replicator(FunctionCallInfo fcinfo);

Datum
rk_create_replicator(PG_FUNCTION_ARGS)
{
	Datum		result = (Datum) 0;
	MemoryContext cxt = CurrentMemoryContext;

	/*
	 * The statement that called us holds the password, and the server log
	 * would print it beside any error; so no error of ours shows it.  Nor
	 * the context: an error inside the kit's own CREATE/ALTER ROLE (a
	 * password check hook) would print that statement, verifier and all.
	 */
	PG_TRY();
	{
		result = create_replicator(fcinfo);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		edata->hide_stmt = true;
		edata->context = NULL;
		edata->internalquery = NULL;
		edata->internalpos = 0;
		ReThrowError(edata);
	}
	PG_END_TRY();
	return result;
}

/*
 * The node role may exist only as the kit made it: a role of that name
 * with more power (a superuser, REPLICATION) would be handed to every node.
 */
static void
check_node_role(const char *repl_role)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(RK_NODE_ROLE)};
	char	   *powerful;

	if (strcmp(repl_role, RK_NODE_ROLE) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is the kit's node role", RK_NODE_ROLE),
				 errdetail("The nodes call each other as this role; it cannot also stream WAL."),
				 errhint("Choose another name for the replication role.")));
	if (!rk_credentials_table_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the extension is older than this library"),
				 errhint("Run ALTER EXTENSION %s UPDATE first.", RK_EXTENSION_NAME)));
	powerful = rk_query_value("SELECT rolsuper OR rolreplication OR rolbypassrls OR rolcreaterole OR rolcreatedb "
							  "FROM pg_catalog.pg_authid WHERE rolname = $1", 1, argtypes, values);
	if (powerful != NULL && strcmp(powerful, "t") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("role \"%s\" exists with more privileges than the kit gives it", RK_NODE_ROLE),
				 errdetail("The kit's node role is a plain LOGIN role; its secret is stored on every node."),
				 errhint("Drop that role, or take SUPERUSER, REPLICATION, BYPASSRLS, CREATEROLE and CREATEDB from it.")));
	/* A member of it could SET ROLE to it; one it is a member of would lend it rights. */
	if (strcmp(rk_query_value("SELECT count(*) FROM pg_catalog.pg_auth_members m "
							  "JOIN pg_catalog.pg_authid a ON a.oid IN (m.roleid, m.member) "
							  "WHERE a.rolname = $1", 1, argtypes, values), "0") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("role \"%s\" has role memberships", RK_NODE_ROLE),
				 errdetail("No role may be a member of the kit's node role, and it may be a member of none."),
				 errhint("Revoke them (see \\du %s), or drop the role and call rk_create_replicator() again.",
						 RK_NODE_ROLE)));
}

static Datum
create_replicator(FunctionCallInfo fcinfo)
{
	CreateReplicator cr = {0};
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char	   *is_super;
	char	   *is_repl;

	rk_require_superuser("rk_create_replicator");
	rk_require_primary("rk_create_replicator");
	rk_require_not_in_transaction_block("rk_create_replicator");

	cr.role = ARG_TEXT_OR_NULL(0);
	cr.password = ARG_TEXT_OR_NULL(1);
	rk_validate_role_name(cr.role);
	if (cr.password == NULL || cr.password[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD),
				 errmsg("the replication role needs a non-empty password")));
	cr.verifier = get_password_type(cr.password) != PASSWORD_TYPE_PLAINTEXT;
	if (get_password_type(cr.password) == PASSWORD_TYPE_MD5)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD),
				 errmsg("an md5 password hash is not accepted"),
				 errhint("Pass the password, or a SCRAM-SHA-256 verifier (pg_authid.rolpassword of a role with password_encryption = scram-sha-256).")));
	if (strchr(cr.password, '\n') || strchr(cr.password, '\r'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD),
				 errmsg("the password must not contain line breaks"),
				 errdetail("It is stored in a libpq password file, one entry per line.")));
	if (!rk_registry_has_primary(NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is not set up as a primary yet"),
				 errhint("Run rk_setup_primary() first.")));

	rk_commit_locally();
	check_node_role(cr.role);

	values[0] = CStringGetTextDatum(cr.role);
	is_super = rk_query_value("SELECT rolsuper FROM pg_catalog.pg_authid WHERE rolname = $1",
							  1, argtypes, values);
	is_repl = rk_query_value("SELECT rolreplication FROM pg_catalog.pg_authid WHERE rolname = $1",
							 1, argtypes, values);
	if (is_super != NULL)
	{
		cr.exists = true;
		if (strcmp(is_super, "t") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("role \"%s\" is a superuser", cr.role),
					 errdetail("The kit does not use a superuser for replication: its password is stored on every node."),
					 errhint("Choose another name for the replication role.")));
		if (strcmp(is_repl, "f") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("role \"%s\" exists and is not a replication role", cr.role),
					 errdetail("The kit does not give the REPLICATION attribute to an existing role."),
					 errhint("Choose another name, or run ALTER ROLE %s REPLICATION yourself first.", cr.role)));
	}

	cr.old_passfile = rk_read_whole_file(RK_PASS_FILE, &cr.old_passfile_len);
	cr.old_node_passfile = rk_read_whole_file(RK_NODE_PASS_FILE, &cr.old_node_passfile_len);
	cr.old_role = rk_registry_replication_role();
	rk_guarded(create_replicator_steps, create_replicator_undo, &cr);
	rk_registry_event("create_replicator", NULL,
					  psprintf("%s replication role \"%s\"", cr.exists ? "updated" : "created", cr.role));

	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%s replication role \"%s\"",
											  cr.exists ? "updated" : "created", cr.role)));
}

/* An authentication method the kit will write, lower-cased. */
static char *
check_method(const char *method, bool force)
{
	char	   *m;

	if (method == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("authentication method must not be null")));
	m = asc_tolower(method, strlen(method));
	if (strcmp(m, "trust") == 0)
	{
		if (!force)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("refusing to allow replication with method \"trust\""),
					 errdetail("trust lets anyone who can reach the server connect as the replication role without a password."),
					 errhint("Use scram-sha-256, or pass force => true if the network is trusted.")));
		return m;
	}
	if (strcmp(m, "scram-sha-256") != 0 && strcmp(m, "md5") != 0 && strcmp(m, "cert") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported authentication method \"%s\"", method),
				 errhint("Use scram-sha-256 (the default), md5, cert or, with force => true, trust.")));
	return m;
}

static void
require_role_exists(const char *role)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(role)};

	if (rk_query_value("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", 1, argtypes, values) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", role),
				 errhint("Create it with rk_create_replicator().")));
}

/*
 * rk_allow_replication(address, role_name, method, force): let `role_name`
 * replicate from `address`.  Runs on any node, since pg_hba.conf is not
 * replicated and every node may become the primary.
 */
Datum
rk_allow_replication(PG_FUNCTION_ARGS)
{
	char	   *address = ARG_TEXT_OR_NULL(0);
	char	   *role = ARG_TEXT_OR_NULL(1);
	char	   *method;
	bool		force = PG_ARGISNULL(3) ? false : PG_GETARG_BOOL(3);
	RkHbaEdit	edit = {0};
	int			added;

	rk_require_superuser("rk_allow_replication");
	rk_require_not_in_transaction_block("rk_allow_replication");
	address = rk_normalize_address(address);
	rk_validate_role_name(role);
	method = check_method(ARG_TEXT_OR_NULL(2), force);
	require_role_exists(role);

	added = rk_hba_add_lines(&edit, role, address, method, NULL);
	if (added == 0)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("pg_hba.conf already lets \"%s\" replicate from %s with %s",
												  role, address, method)));
	rk_registry_event("allow_replication", NULL,
					  psprintf("pg_hba.conf lets \"%s\" replicate from %s with %s", role, address, method));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("pg_hba.conf now lets \"%s\" replicate from %s with %s",
											  role, address, method)));
}

/* rk_revoke_replication(address, role_name): remove what rk_allow_replication added. */
Datum
rk_revoke_replication(PG_FUNCTION_ARGS)
{
	char	   *address = ARG_TEXT_OR_NULL(0);
	char	   *role = ARG_TEXT_OR_NULL(1);
	RkHbaEdit	edit = {0};
	bool		foreign;
	int			removed;

	rk_require_superuser("rk_revoke_replication");
	rk_require_not_in_transaction_block("rk_revoke_replication");
	address = rk_normalize_address(address);
	rk_validate_role_name(role);

	removed = rk_hba_remove_lines(&edit, role, address, NULL, &foreign);
	if (removed == 0 && foreign)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the pg_hba.conf line for \"%s\" from %s was not added by replication_kit", role, address),
				 errdetail("The kit only removes lines it added itself, which end with \"%s\".", RK_HBA_MARK),
				 errhint("Edit pg_hba.conf by hand to remove it.")));
	if (removed == 0)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("no pg_hba.conf line of the kit lets \"%s\" replicate from %s",
												  role, address)));
	rk_registry_event("revoke_replication", NULL,
					  psprintf("removed pg_hba.conf lines for \"%s\" from %s", role, address));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("removed %d pg_hba.conf line%s for \"%s\" from %s",
											  removed, removed == 1 ? "" : "s", role, address)));
}
