/*-------------------------------------------------------------------------
 *
 * rejoin.c
 *		An old primary comes back as a standby of the new one, by itself.
 *
 * Two ways in:
 *  - A running primary learns that another node is the primary of a newer
 *    term (FENCED --DEPOSED--> REJOINING).  It already refuses commits; now
 *    it points primary_conninfo at the new primary, writes standby.signal,
 *    starts the rk_rejoin helper in a session of its own and asks its
 *    postmaster for a fast shutdown.  The helper rewinds the data directory
 *    (pg_rewind; a no-op when nothing diverged) and starts the server again,
 *    which comes up in recovery and streams through its own slot.
 *  - The fence at start (fence_start.c) already started it as a standby but
 *    its WAL may have diverged from the new timeline.  If it does not
 *    follow the new primary within a few seconds, the same rewind runs.
 *
 * The helper keeps the node's own files beside PGDATA until the node is
 * whole again; a server start that finds them hands over to a helper that
 * finishes the rejoin (rk_rejoin_resume_at_start).
 *
 * With replication_kit.auto_rejoin off it stays fenced (or a read-only
 * standby that does not stream) until someone runs SELECT rk_rejoin().
 * A rewind runs at most once per term (the state file remembers the term
 * of the last one); if the node still cannot follow,
 * rk_status says so and what to do instead (a fresh clone).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/timeline.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "libpq/pqsignal.h"
#include "postmaster/postmaster.h"
#include "replication/walreceiver.h"
#include "storage/fd.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "core/credentials.h"
#include "core/conninfo.h"
#include "worker/fsm.h"
#include "worker/worker.h"

static int
primary_index(RkView *v)
{
	for (int i = 0; i < v->npeers; i++)
		if (v->st.primary_name[0] && strcmp(v->peers[i].name, v->st.primary_name) == 0 &&
			!v->peers[i].is_self)
			return i;
	return -1;
}

/* Where the postmaster's stderr goes: the restarted server logs there too. */
static char *
server_log_path(pid_t postmaster)
{
	char		link[64];
	char		target[MAXPGPATH];
	ssize_t		n;
	struct stat st;

	snprintf(link, sizeof(link), "/proc/%d/fd/2", (int) postmaster);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return pstrdup("");
	target[n] = '\0';
	if (stat(target, &st) != 0 || !S_ISREG(st.st_mode))
		return pstrdup("");
	return pstrdup(target);
}

/*
 * Start rk_rejoin in a session of its own, so that the shutdown of
 * `postmaster` spares it.  An empty source: finish the run that was
 * interrupted (its work directory knows the source).
 */
static bool
spawn_helper(const char *source, const char *reclone, pid_t postmaster, char *error, size_t errlen)
{
	char		bindir[MAXPGPATH];
	char		script[MAXPGPATH];
	char		pmpid[16];
	char	   *logfile = server_log_path(postmaster);
	pid_t		pid;

	strlcpy(bindir, my_exec_path, sizeof(bindir));
	get_parent_directory(bindir);
	snprintf(script, sizeof(script), "%s/rk_rejoin", bindir);
	snprintf(pmpid, sizeof(pmpid), "%d", (int) postmaster);
	if (access(script, X_OK) != 0)
	{
		snprintf(error, errlen, "cannot run %s: %m (make install puts it there)", script);
		return false;
	}

	/*
	 * In a session of its own: the shutdown of the server that the worker
	 * asks for next signals the worker's whole process group.
	 */
	pid = rk_fork_detached(-1);
	if (pid < 0)
	{
		snprintf(error, errlen, "could not fork: %m");
		return false;
	}
	if (pid == 0)
	{
		execl(script, "rk_rejoin", DataDir, bindir, source, pmpid, logfile, reclone, (char *) NULL);
		_exit(127);
	}
	return true;
}

/* Did the last rk_rejoin helper run to its end (RK_REJOIN_DONE_FILE)? */
static bool
helper_finished(void)
{
	struct stat sb;

	return stat(RK_REJOIN_DONE_FILE, &sb) == 0;
}

/*
 * Point this node at the new primary, mark it a standby, start the helper
 * and shut the server down.  Runs once per term.
 */
static void
start_rewind(RkView *v, int p)
{
	RkPeer	   *to = &v->peers[p];
	char	   *source;
	char	   *reclone;
	char		error[RK_REASON_LEN];
	RkNodeState st;

	StringInfoData conn;
	bool		started;

	if (v->ctx->helper_started)
		return;

	initStringInfo(&conn);
	rk_conninfo_append(&conn, "host", to->host);
	rk_conninfo_append(&conn, "port", psprintf("%d", to->port));
	rk_conninfo_append(&conn, "user", v->peer_user);
	rk_conninfo_append(&conn, "passfile", psprintf("%s/%s", DataDir,
												   strcmp(v->peer_user, RK_NODE_ROLE) == 0 ?
												   RK_NODE_PASS_FILE : RK_PASS_FILE));
	rk_conninfo_append(&conn, "dbname", rk_database);
	rk_conninfo_append(&conn, "connect_timeout", "5");
	/* A source that stops answering half way must not hang the rewind. */
	rk_conninfo_append(&conn, "keepalives_idle", "5");
	rk_conninfo_append(&conn, "keepalives_interval", "2");
	rk_conninfo_append(&conn, "keepalives_count", "3");
	rk_conninfo_append(&conn, "tcp_user_timeout", "15000");
	rk_conninfo_append(&conn, "application_name", "rk_rejoin");
	rk_conninfo_append_tls(&conn, strcmp(v->peer_user, RK_NODE_ROLE) == 0);
	source = conn.data;
	reclone = psprintf("pg_ctl stop -D %s; rm -rf %s/* %s %s; %s; then start it with its own port",
					   rk_shell_quote(DataDir), rk_shell_quote(DataDir),
					   rk_shell_quote(psprintf("%s" RK_REJOIN_WORK_SUFFIX, DataDir)),
					   rk_shell_quote(psprintf("%s.rk_rewinding", DataDir)),
					   rk_clone_command(DataDir, v->self, to->host, to->port, v->repl_role));

	/* After the restart it must come up in recovery, following the new primary. */
	rk_repoint_to(v, p);
	started = rk_xact_begin();
	rk_alter_system("default_transaction_read_only", NULL);
	rk_xact_end(started);
	rk_durable_write(STANDBY_SIGNAL_FILE, "", 0, pg_file_create_mode);

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	st = rk_shared->state;
	strlcpy(st.role, "standby", sizeof(st.role));
	/* A standby again: its win is over (or it would refuse every vote, judge_vote). */
	st.won_term = 0;
	st.rejoin_pending = true;
	st.rejoin_from_tli = findNewestTimeLine(rk_current_timeline());
	st.rewound_term = v->st.term;
	/* The vote of an old term is no use; one in this term must stand (one vote per term). */
	if (st.voted_term < st.term)
		st.voted_for[0] = '\0';
	rk_state_save_locked(&st);
	rk_shared->rejoin_requested = false;
	LWLockRelease(rk_shared->lock);

	/* The helper writes it again once it has run to its end (rk_rejoin). */
	(void) unlink(RK_REJOIN_DONE_FILE);
	if (!spawn_helper(source, reclone, PostmasterPid, error, sizeof(error)))
	{
		rk_set_readiness("rejoin failed: %s", error);
		rk_journal(v, "rejoin_failed", v->self, "%s", error);
		return;
	}
	v->ctx->helper_started = true;
	rk_journal(v, "rejoin", v->self, "rewinding from %s and restarting as its standby (term " UINT64_FORMAT ")",
			   to->name, v->st.term);
	rk_set_readiness("rejoining: restarting as a standby of %s", to->name);

	/* A fast shutdown; rk_rejoin starts the server again. */
	if (kill(PostmasterPid, SIGINT) != 0)
		ereport(WARNING, (errmsg("could not ask the postmaster to shut down: %m")));
}

/*
 * Called from _PG_init, in the postmaster, before anything else looks at
 * the data directory.  A work directory beside PGDATA means an rk_rejoin
 * run has not finished: the data directory may hold the source's
 * configuration and identity (pg_rewind copies them), lack standby.signal,
 * or be half rewound, and must not start as it is.  If that run is still
 * at work (it holds the lock), the server does not start; if it was
 * killed, the server starts a helper that finishes it and then starts the
 * server as a standby, and does not start itself.
 */
void
rk_rejoin_resume_at_start(void)
{
	char	   *work = psprintf("%s" RK_REJOIN_WORK_SUFFIX, DataDir);
	char	   *lock = psprintf("%s/lock", work);
	char		error[RK_REASON_LEN];
	struct stat sb;
	int			fd;

	if (lstat(work, &sb) != 0)
		return;
	/*
	 * Only a directory of this server's own user, closed to everyone else,
	 * is a rejoin's: one someone else made (beside a data directory whose
	 * parent others may write to) must not put its files into PGDATA.
	 */
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		ereport(FATAL,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg(RK_LOG_PREFIX "\"%s\" is not a rejoin's work directory that this server can trust", work),
				 errdetail("It must be a directory of this server's user with mode 0700; this data directory may be half rewound, or hold another node's configuration."),
				 errhint("If this node's rejoin was interrupted, clone it afresh; then remove \"%s\".", work)));
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0)
		ereport(FATAL,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg(RK_LOG_PREFIX "rk_rejoin is rewinding this data directory"),
				 errdetail("\"%s\" exists and its rk_rejoin holds it; it starts the server as a standby when it is done.", work),
				 errhint("See %s/run.log.", work)));
	if (fd >= 0)
		close(fd);
	if (!spawn_helper("", "", getpid(), error, sizeof(error)))
		ereport(FATAL,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg(RK_LOG_PREFIX "the rejoin of this data directory was interrupted, and it cannot be finished: %s", error),
				 errdetail("\"%s\" holds this node's own configuration; the data directory may hold another node's.", work),
				 errhint("Clone this node afresh, and remove \"%s\".", work)));
	ereport(FATAL,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg(RK_LOG_PREFIX "the rejoin of this data directory was interrupted; rk_rejoin finishes it"),
			 errdetail("\"%s\" holds this node's own configuration and how far the rewind got; rk_rejoin puts the node back together and starts the server as a standby.", work),
			 errhint("See replication_kit.rejoin.log in the data directory, or %s/run.log while it runs.", work)));
}

/* Is a session here still waiting for the answer of its rk_switchover()? (for a while) */
static bool
switchover_caller_waiting(RkWorkerContext *ctx)
{
	pid_t		pid;

	LWLockAcquire(rk_shared->lock, LW_SHARED);
	pid = rk_shared->switchover_caller;
	LWLockRelease(rk_shared->lock);
	if (pid == 0 || kill(pid, 0) != 0)
	{
		ctx->caller_waiting_since = 0;
		return false;
	}
	if (ctx->caller_waiting_since == 0)
		ctx->caller_waiting_since = rk_monotonic_ms();
	return rk_monotonic_ms() - ctx->caller_waiting_since < RK_SWITCHOVER_CALLER_MS;
}

/*
 * May this node be rewound and restarted as a standby now?  Only when an
 * operator asked (rk_rejoin, a switchover), or automatically with
 * auto_rejoin on and the cluster not paused.  If not, `why` says what
 * holds it back.
 */
static bool
may_rejoin(RkView *v, int source, char *why, size_t whylen)
{
	bool		requested;
	RkPeer	   *s = &v->peers[source];

	LWLockAcquire(rk_shared->lock, LW_SHARED);
	requested = rk_shared->rejoin_requested;
	LWLockRelease(rk_shared->lock);
	if (requested)
		return true;
	if (!rk_auto_rejoin)
		snprintf(why, whylen, "replication_kit.auto_rejoin is off");
	else if (v->paused)
		snprintf(why, whylen, "the cluster is paused (since %s%s%s), so no automatic rejoin (rk_resume() ends the pause)",
				 v->paused_since, v->pause_reason[0] ? ": " : "", v->pause_reason);

	/*
	 * This node's own registry copy may be from another history (an old
	 * primary's) and never have seen the pause: what the node it would
	 * rewind from said last counts too, also when this round's probe of it
	 * failed (a rewind, which destroys what only this node has, would still
	 * reach it).  A source that never answered cannot be rewound from.
	 */
	else if (s->pause_state == 1 && v->st.resumed_pause < s->pause_id)
		snprintf(why, whylen, "%s, the primary, holds the cluster paused, so no automatic rejoin (rk_resume() ends the pause)",
				 s->name);
	else
		return true;
	return false;
}

/* FENCED --DEPOSED--> REJOINING: a running old primary turns into a standby. */
RkEvent
rk_act_rejoin(RkView *v)
{
	int			p = primary_index(v);
	char		why[RK_REASON_LEN];

	if (p < 0)
	{
		rk_set_readiness("fenced: another node is the primary of term " UINT64_FORMAT "; waiting to learn which",
				  v->st.term);
		return RK_EV_NONE;
	}
	if (!may_rejoin(v, p, why, sizeof(why)))
	{
		rk_set_readiness("fenced: %s is the primary of term " UINT64_FORMAT "; %s: run SELECT rk_rejoin() to rejoin as its standby",
				  v->peers[p].name, v->st.term, why);
		return RK_EV_NONE;
	}
	if (switchover_caller_waiting(v->ctx))
	{
		rk_set_readiness("fenced: rejoining as a standby of %s once the rk_switchover() or rk_failover() call here returns",
				  v->peers[p].name);
		return RK_EV_NONE;
	}
	start_rewind(v, p);
	return RK_EV_NONE;
}

/*
 * FOLLOWING --DIVERGED--> REJOINING: a standby that got WAL from the old
 * primary that the new one never had cannot follow its timeline; rewind it
 * like an old primary.
 */
RkEvent
rk_act_rejoin_diverged(RkView *v)
{
	char		why[RK_REASON_LEN];

	if (v->primary_idx < 0)
		return RK_EV_NONE;
	if (!v->ctx->diverged_reported)
		rk_journal(v, "diverged", v->self, "%s; this standby must be rewound", v->why);
	v->ctx->diverged_reported = true;
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->diverged = true;
	LWLockRelease(rk_shared->lock);
	if (!may_rejoin(v, v->primary_idx, why, sizeof(why)))
	{
		rk_set_readiness("cannot follow %s: this standby's WAL diverged from its timeline; %s: run SELECT rk_rejoin()",
				  v->peers[v->primary_idx].name, why);
		return RK_EV_NONE;
	}
	start_rewind(v, v->primary_idx);
	return RK_EV_NONE;
}

/*
 * A rewind that could not reach its source left the attempt number and the
 * reason in RK_REJOIN_RETRY_FILE, and the data directory unchanged.  The
 * next attempt comes after a pause that doubles with every attempt, up to
 * RK_REJOIN_BACKOFF_MAX_MS.  Returns false (and says why in rk_status) while
 * it is not time yet.
 */
static bool
retry_due(RkView *v, int p, bool *retrying)
{
	size_t		len;
	char	   *text = rk_read_whole_file(RK_REJOIN_RETRY_FILE, &len);
	char	   *reason;
	long		attempt;
	int64		pause_ms;

	*retrying = text != NULL;
	if (text == NULL)
	{
		v->ctx->retry_seen_ms = 0;
		return true;
	}
	attempt = strtol(text, &reason, 10);
	if (attempt < 1)
		attempt = 1;
	reason = strchr(text, '\n') ? strchr(text, '\n') + 1 : "";
	if (strchr(reason, '\n'))
		*strchr(reason, '\n') = '\0';
	pause_ms = Min((int64) RK_REJOIN_BACKOFF_MAX_MS, (int64) 1000 << Min(attempt - 1, 16));
	if (v->ctx->retry_seen_ms == 0)
	{
		v->ctx->retry_seen_ms = v->mono;
		rk_journal(v, "rejoin_retry", v->self, "the rewind from %s could not reach it (attempt %ld: %s); next attempt in %ld s",
				   v->peers[p].name, attempt, reason, (long) (pause_ms / 1000));
	}
	if (v->mono - v->ctx->retry_seen_ms < pause_ms)
	{
		rk_set_readiness("rejoining: the rewind from %s could not reach it (attempt %ld: %s); next attempt in %ld s",
						 v->peers[p].name, attempt, reason,
						 (long) ((pause_ms - (v->mono - v->ctx->retry_seen_ms) + 999) / 1000));
		return false;
	}
	return true;
}

/*
 * The rejoin is over: it follows the new primary (`on_new_history`: then a
 * timeline of its own unelected promotion is behind it), or gave up.
 */
static void
end_rejoin(RkView *v, bool on_new_history)
{
	RkNodeState st;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	st = rk_shared->state;
	st.rejoin_pending = false;
	st.rejoin_from_tli = 0;
	if (on_new_history)
	{
		st.unelected_tli = 0;
		st.unelected_fork = InvalidXLogRecPtr;
	}
	rk_state_save_locked(&st);
	rk_shared->readiness[0] = '\0';
	LWLockRelease(rk_shared->lock);
	v->ctx->follow_since = 0;
	v->ctx->retry_seen_ms = 0;
	v->ctx->rejoin_silent_since = 0;
	(void) unlink(RK_REJOIN_RETRY_FILE);
}

/*
 * The primary a rejoin waits for does not answer.  A node on the timeline
 * of its own unelected promotion (an operator promoted it while the
 * primary was dead) would wait for ever, and so would the others: its
 * timeline is the newest they know of.  After failover_timeout it gives
 * the rejoin up and is a standby that takes part in the election, where
 * it counts at its fork point (rk_election_position): the most advanced
 * node wins, and if that is another one, this one is rewound to it
 * (worker.c, diverged()).
 */
static RkEvent
rejoin_target_silent(RkView *v, int p)
{
	if (v->ctx->rejoin_silent_since == 0)
		v->ctx->rejoin_silent_since = v->mono;
	if (v->st.unelected_tli == 0 || rk_current_timeline() != v->st.unelected_tli ||
		v->mono - v->ctx->rejoin_silent_since < rk_vote_wait_ms(true))
	{
		rk_set_readiness("rejoining: %s does not answer", v->peers[p].name);
		return RK_EV_NONE;
	}
	end_rejoin(v, false);
	snprintf(v->why, sizeof(v->why), "%s has not answered for %ld s; this node was promoted without an election and takes part in the next one",
			 v->peers[p].name, (long) (rk_vote_wait_ms(true) / 1000));
	rk_journal(v, "rejoin_given_up", v->self, "%s", v->why);
	return RK_EV_IS_STANDBY;
}

/*
 * REJOINING (an old primary started as a standby): does it follow the new
 * primary?  It does once it replays the new primary's timeline.  If the
 * timeline history says its WAL went past the fork point, it is rewound at
 * once; if the history is not known yet (or says it can follow but it does
 * not), after a grace period.  A rewind whose source could not be reached
 * is tried again with a backoff.
 */
RkEvent
rk_act_check_rejoin(RkView *v)
{
	int			p = primary_index(v);
	TimeLineID	replay_tli;
	struct stat sb;
	char		why[RK_REASON_LEN] = "";
	char		held[RK_REASON_LEN];
	bool		diverged = false;
	bool		retrying;
	bool		own_unelected;

	if (v->ctx->follow_since == 0)
		v->ctx->follow_since = v->mono;
	if (p < 0)
	{
		rk_set_readiness("rejoining: waiting to learn the primary");
		return RK_EV_NONE;
	}
	own_unelected = rk_on_own_unelected_timeline(v);
	if (v->upstream_idx != p && !own_unelected)
		rk_repoint_to(v, p);

	(void) GetXLogReplayRecPtr(&replay_tli);
	if (v->peers[p].reachable && v->peers[p].timeline == replay_tli && WalRcvStreaming() && !own_unelected)
	{
		end_rejoin(v, true);
		snprintf(v->why, sizeof(v->why), "streams from %s on timeline %u", v->peers[p].name, replay_tli);
		return RK_EV_IS_STANDBY;
	}
	if (stat(RK_REJOIN_FAILED_FILE, &sb) == 0)
	{
		size_t		len;
		char	   *failed = rk_read_whole_file(RK_REJOIN_FAILED_FILE, &len);

		rk_set_readiness("rejoin failed: %s", failed ? failed : "see replication_kit.rejoin.log");
		return RK_EV_NONE;
	}
	if (!v->peers[p].reachable && !own_unelected && v->st.rejoin_from_tli != 0 &&
		replay_tli > v->st.rejoin_from_tli)
	{
		/*
		 * It replays a timeline newer than any it knew of when the rejoin
		 * began: the startup process switched to the new primary's history,
		 * which it does only where this node's WAL did not go past the fork.
		 * The rejoin is done, although that primary has gone silent since;
		 * waiting for it would keep this node out of the election that
		 * replaces it (and, with the most WAL, no other node could win).
		 */
		end_rejoin(v, true);
		snprintf(v->why, sizeof(v->why), "replays timeline %u of %s, which has gone silent; it takes part in the next election",
				 replay_tli, v->peers[p].name);
		rk_journal(v, "rejoined", v->self, "%s", v->why);
		return RK_EV_IS_STANDBY;
	}
	if (!v->peers[p].reachable)
		return rejoin_target_silent(v, p);
	v->ctx->rejoin_silent_since = 0;
	if (!retry_due(v, p, &retrying))
		return RK_EV_NONE;
	if (!retrying)
	{
		if (own_unelected)
		{
			diverged = true;
			snprintf(why, sizeof(why), "this node is on timeline %u of its own unelected promotion", replay_tli);
		}
		else
			diverged = rk_fork_state(v->peers[p].timeline, why, sizeof(why)) == RK_FORK_DIVERGED;
		/*
		 * Not in the very first moment: whoever started the server (pg_ctl
		 * start -w) should see it up before the rewind takes it down.
		 */
		if (diverged && v->mono - v->ctx->follow_since < RK_REJOIN_SETTLE_MS)
		{
			rk_set_readiness("rejoining: %s; the rewind from %s starts in a moment", why, v->peers[p].name);
			return RK_EV_NONE;
		}
		if (!diverged && v->mono - v->ctx->follow_since < RK_REJOIN_FOLLOW_GRACE_MS)
		{
			rk_set_readiness("rejoining: waiting to stream from %s%s%s%s", v->peers[p].name,
							 why[0] ? " (" : "", why, why[0] ? ")" : "");
			return RK_EV_NONE;
		}
		if (v->st.rewound_term == v->st.term && helper_finished())
		{
			/*
			 * Rewound once in this term already and still cannot follow: do
			 * not loop.  A helper that was killed half way (the node
			 * restarted under it) did not rewind: that one is tried again.
			 */
			rk_set_readiness("rejoined but not streaming from %s: see replication_kit.rejoin.log and the server log",
							 v->peers[p].name);
			return RK_EV_NONE;
		}
	}
	if (!may_rejoin(v, p, held, sizeof(held)))
	{
		rk_set_readiness("does not follow %s (%s); %s: run SELECT rk_rejoin()",
						 v->peers[p].name, diverged ? why : "its WAL diverged?", held);
		return RK_EV_NONE;
	}
	v->ctx->retry_seen_ms = 0;
	start_rewind(v, p);
	return RK_EV_NONE;
}
