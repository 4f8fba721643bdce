/*-------------------------------------------------------------------------
 *
 * local.c
 *		What this node is, as it can tell by itself without asking anyone:
 *		its name, how far its WAL goes, whether its WAL receiver still hears
 *		from a primary, and (for tests) whom it behaves as cut off from.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/timeline.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "libpq-fe.h"
#include "replication/walreceiver.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "core/conninfo.h"
#include "core/local.h"
#include "core/settings.h"
#include "core/shmem.h"

/* How far this node's WAL goes: flushed on a primary, received or replayed on a standby. */
XLogRecPtr
rk_local_lsn(void)
{
	if (RecoveryInProgress())
		return Max(GetWalRcvFlushRecPtr(NULL, NULL), GetXLogReplayRecPtr(NULL));
	return rk_flush_lsn();
}

/*
 * Where a timeline forked off its parent, from its history file: the
 * parent's id in *parent; InvalidXLogRecPtr for the first timeline.
 */
XLogRecPtr
rk_timeline_fork(TimeLineID tli, TimeLineID *parent)
{
	List	   *history = readTimeLineHistory(tli);
	TimeLineHistoryEntry *newest;

	*parent = 0;
	if (list_length(history) < 2)
		return InvalidXLogRecPtr;
	newest = (TimeLineHistoryEntry *) linitial(history);
	*parent = ((TimeLineHistoryEntry *) lsecond(history))->tli;
	return newest->begin;
}

/*
 * This standby's place in the winner rule: the timeline it is on and how
 * far its WAL goes; but on a timeline that its own unelected promotion
 * started (an operator's pg_promote(): state unelected_tli), the parent
 * timeline and the fork point.  Past the fork it wrote WAL as a node
 * nobody elected, which acknowledged none of it: what counts is what it
 * holds of the elected primary's WAL, all an acknowledged commit can be.
 * Once a rewind put it on another history of that number (another fork
 * point), it counts in full again.  A primary counts in full.
 */
void
rk_election_position(TimeLineID *tli, XLogRecPtr *lsn)
{
	TimeLineID	unelected;
	XLogRecPtr	fork;
	TimeLineID	parent;

	*tli = rk_current_timeline();
	*lsn = rk_local_lsn();
	if (!RecoveryInProgress())
		return;
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	unelected = rk_shared->state.unelected_tli;
	fork = rk_shared->state.unelected_fork;
	LWLockRelease(rk_shared->lock);
	if (unelected == 0 || unelected != *tli || rk_timeline_fork(*tli, &parent) != fork || parent == 0)
		return;
	*tli = parent;
	*lsn = Min(*lsn, fork);
}

/*
 * When did the WAL receiver last hear from its primary, on the monotonic
 * clock?  Its own stamp (lastMsgReceiptTime) is on the wall clock, and a
 * clock stepped back would keep it "recent" for as long as the step.  So
 * what counts is when the stamp last changed, as seen here: the worker
 * looks every round, so the change is seen at most a round late, and the
 * wall-clock age of the stamp, where it is plausible (not negative, not
 * more than a round), says how late.  Any process may look; two that see
 * the change at once write times no earlier than the change.  -1: not
 * streaming.
 */
int64
rk_walreceiver_heard_ms(void)
{
	WalRcvData *walrcv = WalRcv;
	WalRcvState state;
	TimestampTz last;
	int64		now_ms;

	if (walrcv == NULL || rk_shared == NULL)
		return -1;
	SpinLockAcquire(&walrcv->mutex);
	state = walrcv->walRcvState;
	last = walrcv->lastMsgReceiptTime;
	SpinLockRelease(&walrcv->mutex);
	if (state != WALRCV_STREAMING || last == 0)
		return -1;

	now_ms = rk_monotonic_ms();
	if ((uint64) last != pg_atomic_read_u64(&rk_shared->walrcv_last_msg))
	{
		long		age = TimestampDifferenceMilliseconds(last, GetCurrentTimestamp());
		long		round = rk_probe_interval_ms + rk_probe_timeout_ms;

		pg_atomic_write_u64(&rk_shared->walrcv_heard_ms, (uint64) (now_ms - Min(Max(age, 0), round)));
		pg_atomic_write_u64(&rk_shared->walrcv_last_msg, (uint64) last);
	}
	return (int64) pg_atomic_read_u64(&rk_shared->walrcv_heard_ms);
}

/*
 * Has the WAL receiver heard from its primary within `window_ms`?  The
 * second signal a standby watches: WAL still arriving means the primary
 * is alive, whatever the probes say, and no election may start.
 */
bool
rk_walreceiver_hears_primary(int window_ms)
{
	int64		heard = rk_walreceiver_heard_ms();

	return heard >= 0 && rk_monotonic_ms() - heard < window_ms;
}

/*
 * Did this node's last probe find the node it streams from (its
 * primary_conninfo) alive but acknowledging nothing (fenced, or its lease
 * run out)?  WAL and keepalives from such a primary are no sign of a
 * working one: they must not keep the standbys from electing another.
 * The caller holds rk_shared->lock.
 */
bool
rk_upstream_answers_fenced_locked(void)
{
	char	   *host;
	int			port;

	if (!rk_conninfo_target(GetConfigOption("primary_conninfo", true, false), &host, &port))
		return false;
	for (int i = 0; i < rk_shared->npeers; i++)
	{
		RkPeer	   *p = &rk_shared->peers[i];

		if (!p->is_self && strcmp(p->host, host) == 0 && p->port == port)
			return p->reachable && !p->in_recovery && p->fenced;
	}
	return false;
}

/* Is `node_name` on this node's replication_kit.simulate_partition list? */
bool
rk_partitioned_from(const char *node_name)
{
	char	   *copy;
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (node_name == NULL || rk_simulate_partition == NULL || rk_simulate_partition[0] == '\0')
		return false;
	copy = pstrdup(rk_simulate_partition);
	if (!SplitIdentifierString(copy, ',', &names))
		return false;
	foreach(lc, names)
	{
		if (strcmp((char *) lfirst(lc), node_name) == 0)
			found = true;
	}
	return found;
}

/*
 * The application_name in primary_conninfo, which is the name the primary
 * knows this standby by (pg_stat_replication, synchronous_standby_names);
 * NULL if primary_conninfo is empty or names none.
 */
char *
rk_primary_conninfo_appname(void)
{
	const char *conninfo = GetConfigOption("primary_conninfo", true, false);
	PQconninfoOption *opts;
	char	   *result = NULL;

	if (conninfo == NULL || conninfo[0] == '\0')
		return NULL;
	opts = PQconninfoParse(conninfo, NULL);
	if (opts == NULL)
		return NULL;
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		if (strcmp(o->keyword, "application_name") == 0 && o->val && o->val[0] != '\0')
			result = pstrdup(o->val);
	}
	PQconninfoFree(opts);
	return result;
}

/*
 * This node's name.  An explicit replication_kit.node_name wins.  A standby
 * goes by the application_name it streams under, because that is the one
 * name the primary can check; a cloned standby inherits the primary's
 * state file, and this is how it stops believing it is the primary.
 * Otherwise the name remembered in the state file.  NULL if none of these
 * says anything (a node not yet set up).
 */
char *
rk_self_name(void)
{
	char	   *appname;

	if (rk_node_name_setting && rk_node_name_setting[0] != '\0')
		return pstrdup(rk_node_name_setting);
	if (RecoveryInProgress() && (appname = rk_primary_conninfo_appname()) != NULL)
		return appname;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_state_load_locked();
	appname = rk_shared->state.node_name[0] ? pstrdup(rk_shared->state.node_name) : NULL;
	LWLockRelease(rk_shared->lock);
	return appname;
}

/*
 * End the WAL senders of every standby but `keep` (NULL: of every
 * standby), trying `tries` times while they reconnect; the caller is in a
 * transaction.  With `only_nodes`, only the streams of the kit's nodes
 * (each through the physical slot named after it), not a base backup's
 * or a logical decoding's.  A fenced primary, or one whose lease ran out, must not go
 * on sending WAL: a standby that got it would acknowledge commits that
 * waited through an election.
 */
void
rk_cut_walsenders(const char *keep, bool only_nodes, int tries)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1] = {keep ? CStringGetTextDatum(keep) : (Datum) 0};
	const char *nulls = keep ? " " : "n";

	for (int attempt = 0; attempt < tries; attempt++)
	{
		int			ret;
		uint64		cut;

		SPI_connect();
		ret = SPI_execute_with_args(only_nodes ?
									"SELECT pg_catalog.pg_terminate_backend(r.pid) FROM pg_catalog.pg_stat_replication r "
									"JOIN pg_catalog.pg_replication_slots s ON s.active_pid = r.pid AND s.slot_type = 'physical' "
									"WHERE r.application_name IS DISTINCT FROM $1 AND r.application_name = s.slot_name" :
									"SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_replication "
									"WHERE application_name IS DISTINCT FROM $1",
									1, types, vals, nulls, false, 0);
		cut = SPI_processed;	/* SPI_finish restores the caller's */
		SPI_finish();
		if (ret == SPI_OK_SELECT && cut == 0)
			return;
		if (attempt == tries - 1)
			break;
		pg_usleep(RK_WALSENDER_CUT_PAUSE_MS * 1000L);
		CHECK_FOR_INTERRUPTS();
	}
	if (tries > 1)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg(RK_LOG_PREFIX "WAL senders of other standbys are still running after %d ms",
						tries * RK_WALSENDER_CUT_PAUSE_MS)));
}

/*
 * Can this standby follow a primary on timeline `upstream_tli`, or has its
 * WAL gone past the point where that timeline forked off its own?  Decided
 * from the timeline history the WAL receiver fetches from the upstream when
 * it connects (pg_wal/<tli>.history), and from how far this node has
 * replayed: the startup process refuses a timeline that forked off before
 * its replay position, and only a rewind gets past that.  Unknown until the
 * history is here and the local WAL is replayed.  `why` gets the words.
 */
RkFork
rk_fork_state(TimeLineID upstream_tli, char *why, size_t whylen)
{
	TimeLineID	replay_tli;
	XLogRecPtr	replay_lsn = GetXLogReplayRecPtr(&replay_tli);
	List	   *history;
	XLogRecPtr	switchpoint;

	if (upstream_tli <= replay_tli)
		return RK_FORK_CAN_FOLLOW;
	if (rk_shared == NULL || !rk_shared->wal_end_known || !existsTimeLineHistory(upstream_tli))
	{
		snprintf(why, whylen, "the history of timeline %u is not known here yet", upstream_tli);
		return RK_FORK_UNKNOWN;
	}
	history = readTimeLineHistory(upstream_tli);
	if (!tliInHistory(replay_tli, history))
	{
		snprintf(why, whylen, "timeline %u is not in the history of timeline %u", replay_tli, upstream_tli);
		return RK_FORK_DIVERGED;
	}
	switchpoint = tliSwitchPoint(replay_tli, history, NULL);
	if (replay_lsn > switchpoint)
	{
		snprintf(why, whylen, "timeline %u forked off timeline %u at %X/%X, and this node replayed up to %X/%X",
				 upstream_tli, replay_tli, LSN_FORMAT_ARGS(switchpoint), LSN_FORMAT_ARGS(replay_lsn));
		return RK_FORK_DIVERGED;
	}
	return RK_FORK_CAN_FOLLOW;
}
