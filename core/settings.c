/*-------------------------------------------------------------------------
 *
 * settings.c
 *		The replication_kit.* settings, defined once in the postmaster, and
 *		the commit lease's length that follows from them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "postmaster/postmaster.h"

#include "lib/stringinfo.h"
#include "utils/guc.h"

#include "core/settings.h"
#include "core/shmem.h"

char	   *rk_node_name_setting = NULL;
char	   *rk_database = NULL;
char	   *rk_http_address = NULL;
int			rk_probe_interval_ms = 1000;
int			rk_probe_timeout_ms = 1000;
int			rk_failover_timeout_ms = 5000;
int			rk_fence_timeout_ms = 3000;
bool		rk_auto_failover = true;
bool		rk_remove_without_majority = false;
bool		rk_auto_rejoin = true;
char	   *rk_simulate_partition = NULL;
char	   *rk_event_command = NULL;
int			rk_event_timeout_ms = 30000;
char	   *rk_peer_system_identifier = NULL;
char	   *rk_sslmode = NULL;
char	   *rk_sslrootcert = NULL;
char	   *rk_channel_binding = NULL;
int			rk_reserved_connections = 4;

/*
 * The kit's database goes into pg_hba.conf and into connection strings: one
 * word that no pg_hba.conf reader can take for a keyword, a list or a file.
 */
static bool
check_database(char **newval, void **extra, GucSource source)
{
	const char *db = *newval;
	static const char *const keywords[] = {"all", "sameuser", "samerole", "samegroup", "replication"};

	if (db == NULL || db[0] == '\0')
	{
		GUC_check_errdetail("The database name must not be empty.");
		return false;
	}
	if (db[0] == '+' || db[0] == '@' || db[0] == '/')
	{
		GUC_check_errdetail("A database name starting with \"%c\" means something else in pg_hba.conf.", db[0]);
		return false;
	}
	for (const char *p = db; *p; p++)
	{
		if ((unsigned char) *p <= ' ' || *p == 0x7f || *p == '"' || *p == ',' || *p == '#' ||
			*p == '\'' || *p == '\\')
		{
			GUC_check_errdetail("The kit's database name may not contain white space, quotes, commas, '#' or backslashes.");
			return false;
		}
	}
	for (int i = 0; i < lengthof(keywords); i++)
	{
		if (pg_strcasecmp(db, keywords[i]) == 0)
		{
			GUC_check_errdetail("\"%s\" is a pg_hba.conf keyword.", db);
			return false;
		}
	}
	return true;
}

/* A value from a fixed list (libpq's own words for it). */
static bool
check_word(const char *value, const char *const *words, int nwords, const char *setting)
{
	StringInfoData list;

	for (int i = 0; i < nwords; i++)
		if (value != NULL && strcmp(value, words[i]) == 0)
			return true;
	initStringInfo(&list);
	for (int i = 0; i < nwords; i++)
		appendStringInfo(&list, "%s%s", i ? ", " : "", words[i]);
	GUC_check_errdetail("%s is one of: %s.", setting, list.data);
	return false;
}

static bool
check_sslmode(char **newval, void **extra, GucSource source)
{
	static const char *const words[] = {"auto", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"};

	return check_word(*newval, words, lengthof(words), "replication_kit.sslmode");
}

static bool
check_channel_binding(char **newval, void **extra, GucSource source)
{
	static const char *const words[] = {"auto", "disable", "prefer", "require"};

	return check_word(*newval, words, lengthof(words), "replication_kit.channel_binding");
}

/*
 * The libpq sslmode of the kit's connections.  'auto' (the default) is
 * require on a server with ssl = on (rk_setup_primary turns it on, with a
 * certificate of its own) and prefer on one without: the nodes of a cluster
 * share their configuration through the clone, so a node with TLS talks to
 * nodes with TLS.
 */
const char *
rk_tls_sslmode(void)
{
	if (rk_sslmode == NULL || strcmp(rk_sslmode, "auto") == 0)
		return EnableSSL ? "require" : "prefer";
	return rk_sslmode;
}

/*
 * The libpq channel_binding of a connection as the node role (`node_role`)
 * or as the replication role.  'auto' binds the node role's SCRAM login to
 * the TLS channel whenever the connection uses TLS: libpq then answers no
 * other kind of password request, so no man in the middle gets the node
 * secret in cleartext, nor relays the login.  The replication role's login
 * may use md5, cert or trust, which cannot be bound: 'auto' leaves it at
 * prefer.
 */
const char *
rk_tls_channel_binding(bool node_role)
{
	if (rk_channel_binding == NULL || strcmp(rk_channel_binding, "auto") == 0)
		return node_role && rk_tls_required() ? "require" : "prefer";
	return rk_channel_binding;
}

/*
 * Whether the kit's connections must be encrypted (sslmode require or
 * stronger): then nothing secret is handed over a connection that is not.
 */
bool
rk_tls_required(void)
{
	const char *mode = rk_tls_sslmode();

	return strcmp(mode, "require") == 0 || strncmp(mode, "verify-", 7) == 0;
}

/* Called once, from _PG_init in the postmaster. */
void
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
							   PGC_POSTMASTER, 0, check_database, NULL, NULL);

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
							&rk_failover_timeout_ms, 5000, RK_FAILOVER_TIMEOUT_MIN_MS, RK_TIMING_MAX_MS,
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

	DefineCustomBoolVariable("replication_kit.remove_without_majority",
							 "Let rk_remove_standby remove a node from a primary that has no majority.",
							 "Only for nodes that are gone for good: removing nodes from a primary cut "
							 "off from the others could let it accept commits next to the primary they elect.",
							 &rk_remove_without_majority, false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);

	DefineCustomStringVariable("replication_kit.http_address",
							   "Address and port of the read-only HTTP endpoint (GET /primary, /standby, /health, /status, /metrics).",
							   "host:port, [IPv6]:port or *:port; empty (the default) turns it off.",
							   &rk_http_address, "",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("replication_kit.event_command",
							   "Shell command the worker runs when this node's role changes.",
							   "Run by /bin/sh with five arguments appended: the event (promoted, fenced "
							   "or following), this node's name, its role, the term and the primary's name. "
							   "Its exit status and the start of its output go to the log and rk_events.",
							   &rk_event_command, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomIntVariable("replication_kit.event_timeout",
							"How long an event_command may run before it is killed.",
							NULL,
							&rk_event_timeout_ms, 30000, 100, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomStringVariable("replication_kit.simulate_partition",
							   "For tests: nodes this node behaves as if cut off from.",
							   "A comma-separated list of node names.  The worker neither probes them nor "
							   "answers their calls, and replication connections from them are refused and "
							   "ended, as if the network between them were down.",
							   &rk_simulate_partition, "",
							   PGC_SIGHUP, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);

	DefineCustomStringVariable("replication_kit.peer_system_identifier",
							   "Set by the kit on its node-to-node connections: the caller's database system identifier.",
							   "A node refuses calls from a node of another cluster.",
							   &rk_peer_system_identifier, "",
							   PGC_USERSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("replication_kit.reserved_connections",
							"Connection slots only the nodes' own role (and superusers) may use.",
							"Held back from ordinary clients on top of superuser_reserved_connections, "
							"so that clients at max_connections cannot keep the nodes from probing, "
							"voting and renewing the primary's lease.",
							&rk_reserved_connections, 4, 0, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("replication_kit.sslmode",
							   "libpq sslmode of the kit's connections: node-to-node calls, WAL streaming, pg_rewind, clones.",
							   "verify-full with replication_kit.sslrootcert authenticates every node's server "
							   "certificate; require and stronger also keep the node secret off unencrypted connections.",
							   &rk_sslmode, "auto",
							   PGC_SIGHUP, 0, check_sslmode, NULL, NULL);

	DefineCustomStringVariable("replication_kit.sslrootcert",
							   "The certificate authorities the kit's connections trust (libpq sslrootcert).",
							   "Empty: libpq's default, ~/.postgresql/root.crt of the server's user.",
							   &rk_sslrootcert, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("replication_kit.channel_binding",
							   "libpq channel_binding of the kit's connections.",
							   "require: SCRAM bound to the TLS channel, so that no man in the middle can relay a login.",
							   &rk_channel_binding, "auto",
							   PGC_SIGHUP, 0, check_channel_binding, NULL, NULL);

	MarkGUCPrefixReserved("replication_kit");
}

/*
 * How long a primary may go on committing after a majority last answered.
 * Shorter than failover_timeout by a probe interval, so that the lease of
 * an old primary has run out before any standby may vote for a new one;
 * and the settings are per node, so the smallest failover_timeout any node
 * reported (RkShared.cluster_min_failover_ms) counts too.
 */
int
rk_effective_fence_ms(void)
{
	int			ms = Min(rk_fence_timeout_ms, rk_failover_timeout_ms - rk_probe_interval_ms);

	if (rk_shared != NULL)
	{
		uint64		cluster_min = pg_atomic_read_u64(&rk_shared->cluster_min_failover_ms);

		if (cluster_min > 0 && (int64) cluster_min - rk_probe_interval_ms < ms)
			ms = (int) cluster_min - rk_probe_interval_ms;
	}
	return Max(100, ms);
}

/*
 * How long after its last contact with the primary a standby waits before
 * it votes: its own failover_timeout for an automatic election, the
 * primary's lease for an operator's; never less than the longest lease any
 * node reported, whatever this node's own settings say.
 */
int
rk_vote_wait_ms(bool automatic)
{
	int			ms = automatic ? rk_failover_timeout_ms : rk_effective_fence_ms();

	if (rk_shared != NULL)
	{
		uint64		longest = pg_atomic_read_u64(&rk_shared->cluster_max_lease_ms);

		if ((int64) longest > ms)
			ms = (int) longest;
	}
	return ms;
}
