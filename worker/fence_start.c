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
 * And a standby whose WAL went past the point where the newest timeline it
 * knows of forked off its own (an old primary, or a standby that got WAL
 * the new primary never had) starts on its own timeline instead of failing
 * to start: PostgreSQL refuses to recover towards a timeline that does not
 * contain its minimum recovery point.  Its worker then rewinds it.
 *
 * This runs in _PG_init, in the postmaster, with no shared memory and no
 * latch yet.  It asks through the same node-to-node client as the worker
 * (core/peer.c), which waits there on the sockets alone, under a hard
 * deadline on the monotonic clock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/timeline.h"
#include "access/xlog.h"
#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "core/credentials.h"
#include "core/config.h"
#include "core/conninfo.h"
#include "core/durable.h"
#include "core/node_state.h"
#include "core/clock.h"
#include "core/peer.h"
#include "core/settings.h"
#include "worker/worker.h"

/*
 * Ask every node that has not answered yet, all at once, for at most
 * `timeout_ms`: rk_peer_state() through the kit's one node-to-node client.
 */
static void
ask_peers(const RkNodeState *st, RkStateAnswer *ans, bool *answered, int timeout_ms)
{
	RkCall		calls[RK_MAX_NODES];
	int			ncalls = 0;
	char		term[32];
	const char *params[3];
	/* The kit's schema as last recorded; a state file from before 1.3 has none. */
	const char *sql = st->schema[0]
		? psprintf("SELECT * FROM %s.rk_peer_state($1, $2::bigint, $3::boolean)", quote_identifier(st->schema))
		: "SELECT * FROM rk_peer_state($1, $2::bigint, $3::boolean)";

	snprintf(term, sizeof(term), UINT64_FORMAT, st->term);
	params[0] = st->node_name;
	params[1] = term;
	params[2] = "false";
	for (int i = 0; i < st->npeers; i++)
	{
		if (answered[i])
			continue;
		rk_call_init(&calls[ncalls], st->peer_host[i], st->peer_port[i], rk_peer_user(st->repl_role),
					 st->node_name, sql, 3, params);
		calls[ncalls].peer_index = i;
		ncalls++;
	}
	rk_calls_run(calls, ncalls, timeout_ms);
	for (int c = 0; c < ncalls; c++)
	{
		int			i = calls[c].peer_index;

		answered[i] = rk_answer_state(&calls[c], &ans[i]);
		/* A winner still being promoted names itself: no primary to follow yet. */
		if (answered[i] && ans[i].in_recovery && strcmp(ans[i].primary_name, st->peer_name[i]) == 0)
			ans[i].primary_name[0] = '\0';
	}
	rk_calls_clear(calls, ncalls);
}

static void
write_file(const char *path, const char *content)
{
	rk_durable_write(path, content, strlen(content), pg_file_create_mode);
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
	rk_conninfo_append(&conninfo, "host", st->peer_host[i]);
	rk_conninfo_append(&conninfo, "port", psprintf("%d", st->peer_port[i]));
	rk_conninfo_append(&conninfo, "user", st->repl_role);
	rk_conninfo_append(&conninfo, "passfile", psprintf("%s/%s", DataDir, RK_PASS_FILE));
	rk_conninfo_append(&conninfo, "application_name", st->node_name);
	rk_conninfo_append_tls(&conninfo, false);

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
	appendStringInfo(&conf, "primary_conninfo = %s\n", rk_conf_quote(conninfo.data));
	appendStringInfo(&conf, "primary_slot_name = %s\n", rk_conf_quote(st->node_name));
	write_file(PG_AUTOCONF_FILENAME, conf.data);

	/* The same values for the running postmaster, which the startup process inherits. */
	SetConfigOption("primary_conninfo", conninfo.data, PGC_POSTMASTER, PGC_S_FILE);
	SetConfigOption("primary_slot_name", st->node_name, PGC_POSTMASTER, PGC_S_FILE);
}

/*
 * A primary demoted by hand (standby.signal and a restart), or restarted
 * while its promotion was still under way (which no worker resumes): a
 * standby now, and its win is over, as in start_as_standby.  (A fresh
 * clone, whose state file is still its primary's, passes here too; its
 * worker then takes the file over under its own name.)  Kept, it would
 * refuse every candidate's vote ("won term N and is being promoted") until
 * a newer term named a primary to it.
 */
static void
give_up_win(RkNodeState *st)
{
	strlcpy(st->role, "standby", sizeof(st->role));
	st->won_term = 0;
	rk_state_write(st);
	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "this node starts as a standby (standby.signal): the win of term " UINT64_FORMAT " in its state file is given up",
					st->term)));
}

/*
 * The newest timeline this data directory knows of: its last checkpoint's,
 * or a newer one whose history file is in pg_wal (a promotion writes its
 * WAL on the new timeline before its first checkpoint).  0 if the control
 * file cannot be read.
 */
static TimeLineID
newest_known_timeline(void)
{
	bool		crc_ok;
	ControlFileData *control = get_controlfile(DataDir, &crc_ok);

	if (control == NULL || !crc_ok)
		return 0;
	return findNewestTimeLine(control->checkPointCopy.ThisTimeLineID);
}

/*
 * Not confirmed as the primary: write standby.signal (durably) and start in
 * recovery, as the standby of the primary this node learned of (`known`,
 * from its own state) or was told of (`newer`, the answer of node
 * newer_idx), or with no upstream, to take part in the election.
 */
static void
start_as_standby(RkNodeState *st, int known, const RkStateAnswer *newer, int newer_idx, int confirmed)
{
	/* Never a writable primary from here on: start in recovery. */
	write_file(STANDBY_SIGNAL_FILE, "");
	if (known >= 0)
	{
		set_upstream(st, known);
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "fence at start: %s was replaced by %s in term " UINT64_FORMAT "; it starts as its standby",
						st->node_name, st->primary_name, st->term)));
	}
	else if (newer != NULL)
	{
		/* The newer primary is the one named in the answer, or the answerer. */
		int			p = newer_idx;

		for (int i = 0; i < st->npeers; i++)
			if (newer->primary_name[0] && strcmp(st->peer_name[i], newer->primary_name) == 0)
				p = i;
		set_upstream(st, p);
		st->term = newer->term;
		strlcpy(st->primary_name, st->peer_name[p], NAMEDATALEN);
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "fence at start: %s is the primary of term " UINT64_FORMAT "; %s starts as its standby",
						st->primary_name, st->term, st->node_name)));
	}
	else
	{
		st->primary_name[0] = '\0';
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "fence at start: %d of %d nodes confirm %s as the primary of term " UINT64_FORMAT "; it starts as a standby and waits for an election",
						confirmed, st->members, st->node_name, st->term)));
	}
	strlcpy(st->role, "standby", sizeof(st->role));
	/*
	 * A standby now: whatever it won is over.  Kept, it would refuse every
	 * other candidate's vote ("won term N and is being promoted") for as
	 * long as no newer term named a primary to it: soak bug E.
	 */
	st->won_term = 0;
	st->rejoin_pending = newer != NULL || known >= 0;
	st->rejoin_from_tli = st->rejoin_pending ? newest_known_timeline() : 0;
	rk_state_write(st);
}

/* Called from _PG_init in the postmaster. */
void
rk_fence_at_start(void)
{
	RkNodeState st;
	RkStateAnswer ans[RK_MAX_NODES];
	bool		answered[RK_MAX_NODES] = {0};
	int64		deadline;
	int			newer = -1;
	int			known = -1;
	int			confirmed;
	int			majority;
	bool		elected;

	if (!rk_state_read(&st))
		return;
	/*
	 * A standby already: a primary demoted by hand, or a node whose
	 * promotion a crash cut short (its role is still "standby" then).  A
	 * replaced primary (which wrote standby.signal the moment it learned of
	 * the newer term) won nothing current and still gets its upstream and
	 * its rejoin check below.
	 */
	if (access(STANDBY_SIGNAL_FILE, F_OK) == 0 && rk_state_elected(&st))
	{
		give_up_win(&st);
		return;
	}
	if (strcmp(st.role, "primary") != 0 || st.members < 2 || st.npeers == 0 ||
		st.repl_role[0] == '\0' || access(RECOVERY_SIGNAL_FILE, F_OK) == 0)
		return;

	majority = st.members / 2 + 1;
	deadline = rk_monotonic_ms() + RK_FENCE_AT_START_MS;

	/*
	 * A node that knows it was replaced (it has seen a newer term than the
	 * last one it won) is never confirmed: it starts as the standby of the
	 * primary it learned of, without asking.
	 */
	elected = rk_state_elected(&st);
	for (int i = 0; i < st.npeers && !elected; i++)
		if (st.primary_name[0] && strcmp(st.peer_name[i], st.primary_name) == 0)
			known = i;

	/* Nodes that are starting too may need a moment: ask until the deadline. */
	for (confirmed = 1; known < 0;)
	{
		ask_peers(&st, ans, answered,
				  (int) Max(1, Min(RK_FENCE_AT_START_TRY_MS, deadline - rk_monotonic_ms())));
		confirmed = 1;
		for (int i = 0; i < st.npeers; i++)
		{
			if (!answered[i])
				continue;
			/*
			 * Not a fenced node out of recovery, though: that one won
			 * nothing (an operator's pg_promote(), a replaced primary),
			 * and rewound to it this node would take its unelected WAL
			 * for the cluster's (the model, with two faults).
			 */
			if (ans[i].term > st.term &&
				((!ans[i].in_recovery && !ans[i].fenced) ||
				 (ans[i].primary_name[0] && strcmp(ans[i].primary_name, st.node_name) != 0)))
				newer = i;
			/* Only a standby that names this node the primary of its own term confirms it. */
			else if (elected && ans[i].in_recovery && ans[i].term == st.term &&
					 strcmp(ans[i].primary_name, st.node_name) == 0)
				confirmed++;
		}
		if (newer >= 0 || confirmed >= majority || rk_monotonic_ms() >= deadline)
			break;
		pg_usleep(RK_FENCE_AT_START_PAUSE_MS * 1000L);
	}
	/* The postmaster's children must not inherit these sockets. */
	rk_calls_disconnect_all();

	if (elected && newer < 0 && confirmed >= majority)
	{
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "fence at start: %d of %d nodes confirm %s as the primary of term " UINT64_FORMAT,
						confirmed, st.members, st.node_name, st.term)));
		return;
	}

	start_as_standby(&st, known, newer >= 0 ? &ans[newer] : NULL, newer, confirmed);
}

/*
 * Would recovery towards the newest timeline fail here?  It does when the
 * point this standby must replay to (its minimum recovery point, or its
 * last checkpoint) lies on its own timeline beyond where the newest
 * timeline forked off: the startup process refuses to start at all ("does
 * not contain minimum recovery point").  Then the server recovers on its
 * own timeline for now (recovery_target_timeline = 'current', for this run
 * only), starts as a read-only standby, and its worker sees the divergence
 * from the timeline history and rewinds it.  Called from _PG_init.
 */
void
rk_start_on_own_timeline_if_diverged(void)
{
	const char *target = GetConfigOption("recovery_target_timeline", true, false);
	ControlFileData *control;
	bool		crc_ok;
	TimeLineID	own_tli;
	TimeLineID	newest;
	XLogRecPtr	point;
	List	   *history;

	if (access(STANDBY_SIGNAL_FILE, F_OK) != 0 || target == NULL || strcmp(target, "latest") != 0)
		return;
	control = get_controlfile(DataDir, &crc_ok);
	if (control == NULL || !crc_ok)
		return;
	if (!XLogRecPtrIsInvalid(control->minRecoveryPoint))
	{
		own_tli = control->minRecoveryPointTLI;
		point = control->minRecoveryPoint - 1;
	}
	else
	{
		own_tli = control->checkPointCopy.ThisTimeLineID;
		point = control->checkPoint;
	}
	newest = findNewestTimeLine(control->checkPointCopy.ThisTimeLineID);
	if (newest <= own_tli)
		return;
	history = readTimeLineHistory(newest);
	if (tliOfPointInHistory(point, history) == own_tli)
		return;
	SetConfigOption("recovery_target_timeline", "current", PGC_POSTMASTER, PGC_S_OVERRIDE);
	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "this standby's WAL goes past the point where timeline %u forked off its timeline %u (at %X/%X): it recovers on timeline %u until it is rewound",
					newest, own_tli, LSN_FORMAT_ARGS(point), own_tli)));
}
