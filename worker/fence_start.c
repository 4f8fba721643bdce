/*-------------------------------------------------------------------------
 *
 * fence_start.c
 *		The fence at start: a node whose state file says it was the primary
 *		of a cluster of several asks the other nodes, from the postmaster,
 *		before it opens a single connection, whether someone else has been
 *		made the primary in a newer term.
 *
 *		- Another node is the primary of a newer term: this node starts as
 *		  its standby (standby.signal, primary_conninfo through its own slot)
 *		  and its worker makes sure it can follow, rewinding it if its WAL
 *		  diverged (worker/rejoin.c).
 *		- A majority confirms that this node is still the primary: it starts
 *		  as the primary (and commits once its worker holds the lease).
 *		- It cannot tell (too few nodes answer): it starts as a standby with
 *		  no upstream, never as a writable primary, and takes part in the
 *		  election the others hold; with the most WAL it wins it.
 *
 * This runs in _PG_init, in the postmaster, with no shared memory and no
 * latch yet, so it uses libpq directly with poll() and a hard deadline.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <poll.h>
#include <unistd.h>

#include "access/xlog.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "replication_kit.h"

/* How long the postmaster waits for the other nodes, all attempts together. */
#define FENCE_AT_START_MS	6000

typedef struct StartAnswer
{
	bool		answered;
	bool		in_recovery;
	uint64		term;
	char		primary_name[NAMEDATALEN];
} StartAnswer;

/* One synchronous call with a deadline, for the postmaster. */
static bool
ask_peer(const RkNodeState *st, int i, TimestampTz deadline, StartAnswer *ans)
{
	char		port[16];
	char		passfile[MAXPGPATH];
	char		term[32];
	const char *keys[] = {"host", "port", "dbname", "user", "passfile", "application_name",
	"connect_timeout", NULL};
	const char *vals[8];
	const char *params[3];
	PGconn	   *conn;
	PGresult   *res = NULL;
	bool		ok = false;

	snprintf(port, sizeof(port), "%d", st->peer_port[i]);
	snprintf(passfile, sizeof(passfile), "%s/%s", DataDir, RK_PASS_FILE);
	vals[0] = st->peer_host[i];
	vals[1] = port;
	vals[2] = rk_database;
	vals[3] = st->repl_role;
	vals[4] = passfile;
	vals[5] = "replication_kit fence at start";
	vals[6] = "2";
	vals[7] = NULL;

	conn = PQconnectStartParams(keys, vals, 0);
	if (conn == NULL)
		return false;
	for (PostgresPollingStatusType p = PGRES_POLLING_WRITING;;)
	{
		struct pollfd pfd;
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		if (p == PGRES_POLLING_OK)
			break;
		if (p == PGRES_POLLING_FAILED || left <= 0 || PQsocket(conn) < 0)
			goto done;
		pfd.fd = PQsocket(conn);
		pfd.events = p == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		if (poll(&pfd, 1, (int) Min(left, 500)) > 0)
			p = PQconnectPoll(conn);
	}

	snprintf(term, sizeof(term), UINT64_FORMAT, st->term);
	params[0] = st->node_name;
	params[1] = term;
	params[2] = "false";
	if (!PQsendQueryParams(conn, "SELECT in_recovery, term, primary_name FROM rk_peer_state($1, $2::bigint, $3::boolean)",
						   3, NULL, params, NULL, NULL, 0))
		goto done;
	for (;;)
	{
		struct pollfd pfd;
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		if (!PQconsumeInput(conn))
			goto done;
		if (!PQisBusy(conn))
			break;
		if (left <= 0)
			goto done;
		pfd.fd = PQsocket(conn);
		pfd.events = POLLIN;
		(void) poll(&pfd, 1, (int) Min(left, 500));
	}
	res = PQgetResult(conn);
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
	{
		ans->answered = true;
		ans->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
		ans->term = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		strlcpy(ans->primary_name, PQgetisnull(res, 0, 2) ? "" : PQgetvalue(res, 0, 2), NAMEDATALEN);
		ok = true;
	}
done:
	if (res)
		PQclear(res);
	PQfinish(conn);
	return ok;
}

static void
write_file(const char *path, const char *content)
{
	char		tmp[MAXPGPATH];
	FILE	   *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = AllocateFile(tmp, "w");
	if (f == NULL)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	fputs(content, f);
	if (fflush(f) != 0 || pg_fsync(fileno(f)) != 0 || FreeFile(f) != 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	(void) durable_rename(tmp, path, FATAL);
}

/*
 * Set primary_conninfo and primary_slot_name in postgresql.auto.conf and in
 * the postmaster's own settings, which the startup process inherits.  The
 * file is rewritten the way ALTER SYSTEM leaves it; nothing else can be
 * writing it before the postmaster has started anything.
 */
static void
set_upstream(const RkNodeState *st, int i)
{
	StringInfoData conf;
	StringInfoData conninfo;
	char	   *old;
	size_t		len;

	initStringInfo(&conninfo);
	appendStringInfo(&conninfo,
					 "host=''%s'' port=%d user=''%s'' passfile=''%s/%s'' application_name=''%s''",
					 st->peer_host[i], st->peer_port[i], st->repl_role, DataDir, RK_PASS_FILE,
					 st->node_name);

	initStringInfo(&conf);
	old = rk_read_whole_file(PG_AUTOCONF_FILENAME, &len);
	if (old)
	{
		char	   *line = old;

		while (line && *line)
		{
			char	   *nl = strchr(line, '\n');

			if (nl)
				*nl = '\0';
			if (strncmp(line, "primary_conninfo", 16) != 0 && strncmp(line, "primary_slot_name", 17) != 0)
				appendStringInfo(&conf, "%s\n", line);
			line = nl ? nl + 1 : NULL;
		}
	}
	else
		appendStringInfoString(&conf, "# Do not edit this file manually!\n"
							   "# It will be overwritten by the ALTER SYSTEM command.\n");
	appendStringInfo(&conf, "primary_conninfo = '%s'\n", conninfo.data);
	appendStringInfo(&conf, "primary_slot_name = '%s'\n", st->node_name);
	write_file(PG_AUTOCONF_FILENAME, conf.data);

	/* The same values, '' unescaped, for the running postmaster. */
	resetStringInfo(&conninfo);
	appendStringInfo(&conninfo, "host='%s' port=%d user='%s' passfile='%s/%s' application_name='%s'",
					 st->peer_host[i], st->peer_port[i], st->repl_role, DataDir, RK_PASS_FILE,
					 st->node_name);
	SetConfigOption("primary_conninfo", conninfo.data, PGC_POSTMASTER, PGC_S_FILE);
	SetConfigOption("primary_slot_name", st->node_name, PGC_POSTMASTER, PGC_S_FILE);
}

/* Called from _PG_init in the postmaster. */
void
rk_fence_at_start(void)
{
	RkNodeState st;
	StartAnswer ans[RK_MAX_NODES];
	TimestampTz deadline;
	int			newer = -1;
	int			confirmed;
	int			majority;

	if (!rk_state_read(&st) || strcmp(st.role, "primary") != 0 || st.members < 2 ||
		st.npeers == 0 || st.repl_role[0] == '\0')
		return;
	if (access(STANDBY_SIGNAL_FILE, F_OK) == 0 || access(RECOVERY_SIGNAL_FILE, F_OK) == 0)
		return;

	majority = st.members / 2 + 1;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), FENCE_AT_START_MS);
	memset(ans, 0, sizeof(ans));

	/* Nodes that are starting too may need a moment: ask until the deadline. */
	for (;;)
	{
		TimestampTz round_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 2000);

		confirmed = 1;
		for (int i = 0; i < st.npeers; i++)
		{
			if (!ans[i].answered)
				(void) ask_peer(&st, i, Min(round_deadline, deadline), &ans[i]);
			if (!ans[i].answered)
				continue;
			if (ans[i].term > st.term &&
				(!ans[i].in_recovery ||
				 (ans[i].primary_name[0] && strcmp(ans[i].primary_name, st.node_name) != 0)))
				newer = i;
			else if (ans[i].in_recovery && ans[i].term <= st.term)
				confirmed++;
		}
		if (newer >= 0 || confirmed >= majority || GetCurrentTimestamp() >= deadline)
			break;
		pg_usleep(300 * 1000L);
	}

	if (newer < 0 && confirmed >= majority)
	{
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "fence at start: %d of %d nodes confirm %s as the primary of term " UINT64_FORMAT,
						confirmed, st.members, st.node_name, st.term)));
		return;
	}

	/* Never a writable primary from here on: start in recovery. */
	write_file(STANDBY_SIGNAL_FILE, "");
	if (newer >= 0)
	{
		/* The newer primary is the one named in the answer, or the answerer. */
		int			p = newer;

		for (int i = 0; i < st.npeers; i++)
			if (ans[newer].primary_name[0] && strcmp(st.peer_name[i], ans[newer].primary_name) == 0)
				p = i;
		set_upstream(&st, p);
		st.term = ans[newer].term;
		strlcpy(st.primary_name, st.peer_name[p], NAMEDATALEN);
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "fence at start: %s is the primary of term " UINT64_FORMAT "; %s starts as its standby",
						st.primary_name, st.term, st.node_name)));
	}
	else
	{
		st.primary_name[0] = '\0';
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "fence at start: only %d of %d nodes answered; %s starts as a standby and waits for an election",
						confirmed, st.members, st.node_name)));
	}
	strlcpy(st.role, "standby", sizeof(st.role));
	st.rejoin_pending = newer >= 0;
	rk_state_write(&st);
}
