/*-------------------------------------------------------------------------
 *
 * election.c
 *		Choosing and promoting a new primary.
 *
 * The rules (README, "Failover rules"):
 *  1. Majority: a promotion needs the votes of a strict majority of the
 *     nodes that count (registered and joined, the dead primary included),
 *     and every voter must itself have lost contact with the primary.
 *  2. Terms: an election is for a new term; a node votes at most once per
 *     term and keeps its term and vote on disk (state_file.c).
 *  3. No acknowledged commit lost: only the standby with the most WAL
 *     (timeline, then LSN; ties by synchronous priority, then name) runs,
 *     and it must hear from enough members of the synchronous list that
 *     every possible commit quorum is represented: n - k + 1 of the n
 *     listed standbys for FIRST k or ANY k.  A commit acknowledged by the
 *     old primary is on k of them, so on at least one that was heard from,
 *     and the winner has at least as much WAL as every one heard from.
 *  4. Exactly one node promotes, and only once it has the votes.
 *
 * Before it asks for votes at all, a standby checks that it could win
 * (a pre-vote): it is the best candidate among the nodes it reaches, no
 * reachable standby still has contact with the primary, and the majority
 * and the synchronous quorum are within reach.  So a standby that alone
 * lost its link to a healthy primary never even raises the term.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/timeline.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "core/clock.h"
#include "core/peer.h"
#include "core/upstream.h"
#include "worker/fsm.h"

/*
 * Before pg_promote(): the new timeline must be newer than every timeline
 * another node is on.  PostgreSQL takes the newest history file it finds
 * plus one, and a node on the timeline of its own unelected promotion
 * (it counts at its parent's, rk_election_position) holds one this node
 * never saw.  Reused, that number would make the two histories look alike
 * (pg_rewind: "same timeline, no rewind required") although they are not.
 * So a history file that only holds the number goes into pg_wal for each
 * such timeline.
 */
#define RK_RESERVE_TIMELINES_MAX 8

static void
reserve_timelines(RkView *v)
{
	TimeLineID	newest = 0;
	TimeLineID	mine = rk_current_timeline();

	/*
	 * A node's own unelected timeline is a few past this one at most; a
	 * number further out is not believed (nor written out, file by file).
	 * A node out of reach now counts with what it said last.
	 */
	for (int i = 0; i < v->npeers; i++)
		if (!v->peers[i].is_self && v->peers[i].own_timeline <= mine + RK_RESERVE_TIMELINES_MAX)
			newest = Max(newest, v->peers[i].own_timeline);
	for (TimeLineID tli = mine + 1; tli <= newest; tli++)
	{
		char	   *content;

		if (existsTimeLineHistory(tli))
			continue;
		content = psprintf("# replication_kit: timeline %u is held by another node's unelected promotion; this node's promotion does not reuse it\n", tli);
		writeTimeLineHistoryFile(tli, content, (int) strlen(content));
		rk_journal(v, "timeline_reserved", v->self, "timeline %u is another node's: the promotion takes a newer one", tli);
	}
}

/* Position in the synchronous list (0 first), or a large number for async nodes. */
static int
sync_priority(RkView *v, int idx)
{
	int			pos = 0;

	for (int i = 0; i < v->npeers; i++)
	{
		if (!v->peers[i].sync || i == v->primary_idx)
			continue;
		if (i == idx)
			return pos;
		pos++;
	}
	return 1000 + idx;
}

/* Is a better than b as the next primary? */
static bool
better(RkView *v, int a, TimeLineID tli_a, XLogRecPtr lsn_a, int b, TimeLineID tli_b, XLogRecPtr lsn_b)
{
	if (tli_a != tli_b)
		return tli_a > tli_b;
	if (lsn_a != lsn_b)
		return lsn_a > lsn_b;
	if (v->peers[a].priority != v->peers[b].priority)
		return v->peers[a].priority > v->peers[b].priority;
	if (sync_priority(v, a) != sync_priority(v, b))
		return sync_priority(v, a) < sync_priority(v, b);
	return strcmp(v->peers[a].name, v->peers[b].name) < 0;
}

/*
 * The best candidate among this node and the standbys it reached this
 * round, leaving out `skip` (-1: none); -1 with a reason if there is none.
 */
static int
best_candidate_but(RkView *v, int skip, bool eligible_only, char *reason, size_t reasonlen)
{
	int			best = -1;
	TimeLineID	best_tli = 0;
	XLogRecPtr	best_lsn = 0;

	for (int i = 0; i < v->npeers; i++)
	{
		RkPeer	   *p = &v->peers[i];
		TimeLineID	tli = p->is_self ? v->tli : p->timeline;
		XLogRecPtr	lsn = p->is_self ? v->lsn : p->lsn;

		if ((i == v->primary_idx && !p->is_self) || i == skip || (eligible_only && p->priority == 0))
			continue;
		if (p->is_self ? !v->in_recovery : (!p->reachable || !p->in_recovery))
			continue;
		if (best < 0 || better(v, i, tli, lsn, best, best_tli, best_lsn))
		{
			best = i;
			best_tli = tli;
			best_lsn = lsn;
		}
	}
	if (best < 0)
		snprintf(reason, reasonlen, eligible_only ? "no standby with a priority above 0 is reachable"
				 : "no standby is reachable");
	return best;
}

/* The standby with the most WAL, whatever its priority. */
int
rk_best_candidate(RkView *v, char *reason, size_t reasonlen)
{
	return best_candidate_but(v, -1, false, reason, reasonlen);
}

/* How many synchronous-list members must be heard from: n - k + 1, or 0. */
static int
sync_members_needed(RkView *v, int *listed)
{
	int			n = 0;

	for (int i = 0; i < v->npeers; i++)
		if (v->peers[i].sync && i != v->primary_idx && v->peers[i].joined)
			n++;
	*listed = n;
	if (v->num_sync <= 0 || n == 0)
		return 0;
	return n - Min(v->num_sync, n) + 1;
}

/*
 * Does node `i`, out of recovery on timeline `tli`, hold nothing this
 * candidate lacks of what was acknowledged?  A fenced node on a timeline
 * older than the primary's (an old primary waiting to learn whom to rejoin)
 * never streamed the primary's timeline, so no commit the primary
 * acknowledged waited for it: the k that confirmed each of those are among
 * the other n - 1 listed members, which the other n - k heard meet.  What
 * it does hold from before the primary's timeline began (commits it
 * acknowledged itself, which the primary inherited) the candidate has only
 * if it replayed onto the primary's timeline: then it has the primary's WAL
 * up to the switch, and the primary was elected holding all of that.  So
 * only a candidate on the primary's timeline counts such a node as heard.
 * (A standby that flushed the primary's WAL and then left recovery is on a
 * newer timeline: promotion replays all it has first.  Only a crash restart
 * with standby.signal removed by hand could end recovery short of the
 * switch.)  Left out, an old primary that is up but no standby kept every
 * election from its synchronous quorum once the primary after it came back
 * as a standby (the fault soak's seed 4 ended with no primary at all).
 */
static bool
holds_none_of_primary(RkView *v, int i, TimeLineID tli)
{
	RkPeer	   *p = &v->peers[i];
	RkPeer	   *primary;
	TimeLineID	primary_tli;

	if (v->primary_idx < 0 || i == v->primary_idx || p->is_self || !p->sync || !p->joined ||
		!p->fenced)
		return false;
	primary = &v->peers[v->primary_idx];
	primary_tli = primary->is_self ? v->tli : primary->timeline;
	return tli != 0 && primary_tli != 0 && tli < primary_tli && v->tli == primary_tli;
}

/*
 * Is another node the winner of this term (or a newer one), still being
 * promoted?  It answers in recovery and names itself the primary
 * (rk_peer_state).  A term of this node's own would depose it just as it
 * takes over, and it refuses the vote anyway (judge_vote): wait for it,
 * however slow its promotion (WAL to replay under load), for as long as it
 * answers so without a break, but no longer than pg_promote() waits plus
 * failover_timeout in all, whatever terms it wins meanwhile: a node whose
 * promotion never ends must not hold the others up for ever.
 */
static bool
promotion_elsewhere(RkView *v, char *reason, size_t reasonlen)
{
	RkWorkerContext *ctx = v->ctx;
	bool		wait = false;

	for (int i = 0; i < v->npeers && i < RK_MAX_NODES; i++)
	{
		RkPeer	   *p = &v->peers[i];
		int64		waited;

		if (p->is_self || !p->reachable || !p->promoting || p->term < v->st.term)
		{
			ctx->promoting_since[i] = 0;
			continue;
		}
		if (ctx->promoting_since[i] == 0 || strcmp(ctx->promoting_node[i], p->name) != 0)
		{
			strlcpy(ctx->promoting_node[i], p->name, NAMEDATALEN);
			ctx->promoting_since[i] = v->mono;
		}
		waited = v->mono - ctx->promoting_since[i];
		if (wait || waited >= RK_PROMOTE_WAIT_SECS * 1000L + rk_failover_timeout_ms)
			continue;
		snprintf(reason, reasonlen, "%s won term " UINT64_FORMAT " and has been taking over for %ld ms",
				 p->name, p->term, (long) waited);
		wait = true;
	}
	return wait;
}

/*
 * Could an election be won right now, going by this round's probes?  The
 * pre-vote: nobody else is taking over, majority reachable, synchronous
 * quorum reachable, and no reachable standby still in contact with the
 * primary.
 */
bool
rk_quorum_ready(RkView *v, char *reason, size_t reasonlen)
{
	int			reachable = 0;
	int			heard_sync = 0;
	int			listed;
	int			need = sync_members_needed(v, &listed);
	int64		since_vote;
	RkNodeState st;

	/*
	 * It voted for another node in this term a moment ago: that one may be
	 * taking over.  A term of its own now could only depose it (as a voter
	 * refuses a second candidate for as long, judge_vote).
	 */
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	st = rk_shared->state;
	since_vote = rk_monotonic_ms() - rk_shared->last_vote_ms;
	LWLockRelease(rk_shared->lock);
	if (st.voted_for[0] && strcmp(st.voted_for, v->self) != 0 && st.voted_term == st.term &&
		since_vote < rk_vote_wait_ms(true))
	{
		snprintf(reason, reasonlen, "voted for %s in term " UINT64_FORMAT " %ld ms ago: it may be taking over",
				 st.voted_for, st.voted_term, (long) since_vote);
		return false;
	}
	if (promotion_elsewhere(v, reason, reasonlen))
		return false;

	for (int i = 0; i < v->npeers; i++)
	{
		RkPeer	   *p = &v->peers[i];
		bool		here = p->is_self || (p->reachable && p->in_recovery);

		if (p->reachable && !p->in_recovery && holds_none_of_primary(v, i, p->timeline))
			heard_sync++;
		if (!here)
			continue;
		/*
		 * The primary this node knows of, here as a standby (started after
		 * it was replaced and not confirmed by a majority, or demoted): a
		 * voter like the others once it could grant a vote, that is once
		 * it has had no contact with a primary of its own for as long as a
		 * voter waits; no synchronous member.  Left out, two such nodes of
		 * three each counted one and no election ever began.  Counted while
		 * it streams from a newer primary, it would let this node run term
		 * after term that depose that primary once they are heard.
		 */
		if (i == v->primary_idx)
		{
			if (p->is_self || (p->joined && p->silence_ms >= rk_vote_wait_ms(true)))
				reachable++;
			continue;
		}
		if (p->joined || p->is_self)
			reachable++;
		if (p->sync && p->joined)
			heard_sync++;
		if (!p->is_self && p->silence_ms < rk_vote_wait_ms(true))
		{
			snprintf(reason, reasonlen, "%s still had contact with the primary %ld ms ago",
					 p->name, p->silence_ms);
			return false;
		}
	}
	/*
	 * WAL still arriving means a live primary, unless it comes from a
	 * primary that answered as fenced, or from a standby this node catches
	 * up from (in_place_of): that one's own silence is judged above.
	 */
	if (v->in_recovery && rk_walreceiver_hears_primary(rk_failover_timeout_ms) &&
		!(v->upstream_idx >= 0 && v->upstream_idx != v->primary_idx &&
		  v->peers[v->upstream_idx].reachable && v->peers[v->upstream_idx].in_recovery) &&
		!(v->upstream_idx >= 0 && v->peers[v->upstream_idx].reachable &&
		  !v->peers[v->upstream_idx].in_recovery && v->peers[v->upstream_idx].fenced))
	{
		snprintf(reason, reasonlen, "this node still receives WAL from its primary");
		return false;
	}
	if (v->in_recovery && !rk_shared->wal_end_known)
	{
		snprintf(reason, reasonlen, "this node has not finished replaying its local WAL: how far it goes is not known yet");
		return false;
	}
	if (reachable < v->majority)
	{
		snprintf(reason, reasonlen, "no majority: %d of %d nodes reachable, %d needed",
				 reachable, v->members, v->majority);
		return false;
	}
	if (heard_sync < need)
	{
		snprintf(reason, reasonlen,
				 "cannot rule out losing acknowledged commits: %d of %d synchronous standbys reachable, %d needed for %s %d",
				 heard_sync, listed, need, v->method, v->num_sync);
		return false;
	}
	return true;
}

/* Start a new term with a vote for ourselves, on disk before anyone hears of it. */
static uint64
begin_term(RkView *v)
{
	RkNodeState st;
	uint64		term = v->st.term;

	for (int i = 0; i < v->npeers; i++)
		if (v->peers[i].reachable)
			term = Max(term, v->peers[i].term);
	term++;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	st = rk_shared->state;
	term = Max(term, st.term + 1);
	st.term = term;
	st.voted_term = term;
	strlcpy(st.voted_for, v->self, NAMEDATALEN);
	st.primary_name[0] = '\0';
	rk_state_save_locked(&st);
	v->st = st;
	LWLockRelease(rk_shared->lock);
	return term;
}

/*
 * Ask every other node for its vote in `term`.  Returns the number of votes
 * (ours included); `detail` says who said what.  *more_wal names a node
 * with more WAL than ours, if one answered.
 */
static int
request_votes(RkView *v, uint64 term, const char *mode, int *heard_sync,
			  StringInfo detail, char *more_wal)
{
	RkCall		calls[RK_MAX_NODES];
	int			ncalls = 0;
	char		term_s[32],
				tli_s[16],
				lsn_s[32];
	const char *params[5];
	int			votes = 1;

	snprintf(term_s, sizeof(term_s), UINT64_FORMAT, term);
	snprintf(tli_s, sizeof(tli_s), "%u", v->tli);
	snprintf(lsn_s, sizeof(lsn_s), "%X/%X", LSN_FORMAT_ARGS(v->lsn));
	params[0] = v->self;
	params[1] = term_s;
	params[2] = tli_s;
	params[3] = lsn_s;
	params[4] = mode;
	more_wal[0] = '\0';
	*heard_sync = (v->peers[v->self_idx].sync && v->peers[v->self_idx].joined) ? 1 : 0;

	for (int i = 0; i < v->npeers; i++)
	{
		if (v->peers[i].is_self || rk_partitioned_from(v->peers[i].name))
			continue;
		rk_call_init(&calls[ncalls], v->peers[i].host, v->peers[i].port, v->peer_user, v->self,
					 psprintf("SELECT * FROM %s.rk_request_vote($1, $2::bigint, $3::int, $4::pg_lsn, $5)",
							  v->schema_q), 5, params);
		calls[ncalls].peer_index = i;
		ncalls++;
	}
	pgstat_report_activity(STATE_RUNNING, "asking for votes");
	rk_calls_run(calls, ncalls, rk_probe_timeout_ms);

	for (int c = 0; c < ncalls; c++)
	{
		RkPeer	   *p = &v->peers[calls[c].peer_index];
		RkVoteAnswer a;

		if (!rk_answer_vote(&calls[c], &a))
		{
			appendStringInfo(detail, "%s%s: no answer (%s)", detail->len ? "; " : "", p->name, calls[c].error);
			continue;
		}
		if (a.granted && p->joined)
			votes++;
		/*
		 * A node out of recovery (the old primary, fenced or lease-less) is
		 * no voter, and the WAL it wrote after its lease ran out (abort
		 * records of refused commits) holds nothing acknowledged: whatever
		 * it acknowledged is on the synchronous standbys heard from.
		 */
		if (a.refusal == RK_REFUSAL_NOT_STANDBY)
		{
			if (holds_none_of_primary(v, calls[c].peer_index, a.timeline))
				(*heard_sync)++;
			appendStringInfo(detail, "%s%s: %s", detail->len ? "; " : "", p->name, a.reason);
			continue;
		}
		/*
		 * More WAL than ours, whatever the voter refused for; a voter that
		 * cannot tell yet may have more, and is not "heard" either.
		 */
		if (a.refusal == RK_REFUSAL_MORE_WAL || a.refusal == RK_REFUSAL_WAL_UNKNOWN ||
			a.timeline > v->tli || (a.timeline == v->tli && a.lsn > v->lsn))
			strlcpy(more_wal, p->name, NAMEDATALEN);
		else if (p->sync && p->joined && calls[c].peer_index != v->primary_idx)
			(*heard_sync)++;
		appendStringInfo(detail, "%s%s: %s", detail->len ? "; " : "", p->name, a.reason);
	}
	rk_calls_clear(calls, ncalls);
	return votes;
}

/*
 * Run an election in `mode` and, if it is won, return true (the caller
 * dispatches ELECTION_WON).  `result` says what happened, for the log and
 * for an operator's rk_failover().
 */
static bool
run_election(RkView *v, const char *mode, uint64 term, StringInfo result)
{
	StringInfoData detail;
	char		more_wal[NAMEDATALEN];
	int			heard_sync;
	int			listed;
	int			need = sync_members_needed(v, &listed);
	int			votes;
	bool		force = strcmp(mode, "force") == 0;

	initStringInfo(&detail);
	/* The position to compare is the one now, not the one at round start. */
	rk_election_position(&v->tli, &v->lsn);
	rk_journal(v, "election", v->self, "term " UINT64_FORMAT " (%s): asking for votes at %X/%X on timeline %u",
			   term, mode, LSN_FORMAT_ARGS(v->lsn), v->tli);

	/*
	 * Every voter points its WAL receiver at us before it grants (rule 2),
	 * so its slot must already be here: a receiver that finds none waits
	 * wal_retrieve_retry_interval before it tries again, and meanwhile no
	 * synchronous standby streams from the new primary.
	 */
	rk_create_peer_slots(v);
	pg_atomic_fetch_add_u64(&rk_shared->n_elections, 1);
	votes = request_votes(v, term, mode, &heard_sync, &detail, more_wal);
	rk_journal(v, "votes", v->self, "term " UINT64_FORMAT ": %d of %d (majority %d); %s",
			   term, votes, v->members, v->majority, detail.data);

	/*
	 * Not even force promotes past a node with more WAL: that node can be
	 * the new primary instead, and nothing is lost.  (A node that cannot
	 * tell how far its WAL goes yet counts as one with more.)
	 */
	if (more_wal[0])
	{
		appendStringInfo(result, "%s has more WAL than %s (or cannot tell yet); fail over to it instead: rk_failover('%s'%s)",
						 more_wal, v->self, more_wal, force ? ", force => true" : "");
		return false;
	}
	if (!force && votes < v->majority)
	{
		appendStringInfo(result, "%d of %d votes in term " UINT64_FORMAT ", %d needed (%s)",
						 votes, v->members, term, v->majority, detail.data);
		return false;
	}
	if (!force && heard_sync < need)
	{
		appendStringInfo(result, "heard from %d of %d synchronous standbys, %d needed for %s %d",
						 heard_sync, listed, need, v->method, v->num_sync);
		return false;
	}
	if (force && (votes < v->majority || heard_sync < need))
		appendStringInfo(result, "WARNING: forced without %s%s; commits acknowledged only by the nodes not heard from may be lost. ",
						 votes < v->majority ? "a majority" : "",
						 heard_sync < need ? (votes < v->majority ? " and the synchronous quorum" : "the synchronous quorum") : "");
	appendStringInfo(result, "%d of %d votes in term " UINT64_FORMAT, votes, v->members, term);
	v->ctx->won_forced = force && votes < v->majority;
	v->ctx->won_loss = force && (votes < v->majority || heard_sync < need);
	v->ctx->won_term = term;
	v->ctx->won_at_ms = v->mono;
	strlcpy(v->ctx->won_how, result->data, sizeof(v->ctx->won_how));
	return true;
}

/*
 * If `best` has more WAL than this node, stream from it (once, with `why`
 * in the journal) and return true; false if this node has as much.
 */
static bool
catch_up_from(RkView *v, int best, const char *why)
{
	RkPeer	   *b = &v->peers[best];

	if (!(b->timeline > v->tli || (b->timeline == v->tli && b->lsn > v->lsn)))
		return false;
	if (v->upstream_idx != best)
	{
		bool		started = rk_xact_begin();

		rk_point_catch_up(b->host, b->port, v->self, v->repl_role);
		rk_xact_end(started);
		rk_journal(v, "catch_up", v->self, "%s", why);
	}
	return true;
}

/*
 * A node of priority 0 streams from `best`, which has more WAL, so that its
 * registry copy is as new as that node's.  Returns whether it does.
 */
static bool
priority_catch_up(RkView *v, int best)
{
	RkPeer	   *b = &v->peers[best];

	if (!catch_up_from(v, best, psprintf("priority 0 here, and %s has more WAL: streaming from it, "
										 "whose registry is newer, before judging again", b->name)))
		return false;
	rk_set_readiness("primary lost; this node has priority 0 (as its registry copy says): catching up from %s, "
					 "which has more WAL, before judging again", b->name);
	return true;
}

/*
 * The standby with the most WAL runs first.  If it has not taken over after
 * a second failover_timeout (its auto_failover is off, its worker is stuck,
 * it is rejoining), the next best runs in its place: it first streams from
 * that standby until it holds all of its WAL, so that the rule "nothing
 * acknowledged lost" still holds, and then asks for votes, which the best
 * one, no longer holding more WAL, grants.  A best standby of priority 0
 * never runs, so the next best (of priority above 0) does that at once.
 * Returns whether to run now.
 */
static bool
in_place_of(RkView *v, int best)
{
	RkPeer	   *b = &v->peers[best];
	char		reason[RK_REASON_LEN];
	bool		never = b->priority == 0;
	int			next = best_candidate_but(v, best, true, reason, sizeof(reason));

	if (next != v->self_idx)
	{
		if (never)
			rk_set_readiness("primary lost; %s has the most WAL but priority 0: waiting for %s to take it and run",
							 b->name, next >= 0 ? v->peers[next].name : "a node of priority above 0");
		else
			rk_set_readiness("primary lost; waiting for %s, which has the most WAL, to take over", b->name);
		return false;
	}
	if (!never && v->silence_ms < 2L * rk_failover_timeout_ms)
	{
		rk_set_readiness("primary lost; waiting for %s, which has the most WAL, to take over", b->name);
		return false;
	}
	if (catch_up_from(v, best, never ?
					  psprintf("%s has the most WAL but priority 0; streaming from it before running in its place",
							   b->name) :
					  psprintf("%s has the most WAL but has not taken over in %ld ms; "
							   "streaming from it before running in its place", b->name, v->silence_ms)))
	{
		rk_set_readiness("primary lost; catching up from %s (%X/%X on timeline %u, this node at %X/%X on %u) "
						 "before running in its place", b->name, LSN_FORMAT_ARGS(b->lsn), b->timeline,
						 LSN_FORMAT_ARGS(v->lsn), v->tli);
		return false;
	}
	rk_journal(v, "in_place", v->self, "%s has not taken over in %ld ms; this node holds as much WAL and runs",
			   b->name, v->silence_ms);
	return true;
}

/* FOLLOWING/SUSPECTING --PRIMARY_DEAD--> PRIMARY_LOST: try an automatic election. */
RkEvent
rk_act_elect(RkView *v)
{
	char		reason[RK_REASON_LEN];
	int			best;
	StringInfoData result;

	if (v->paused)
	{
		rk_set_readiness("primary lost %ld ms ago; the cluster is paused (since %s%s%s): no automatic failover; "
						 "run rk_resume() or rk_failover()",
						 v->silence_ms, v->paused_since, v->pause_reason[0] ? ": " : "", v->pause_reason);
		return RK_EV_NONE;
	}
	if (!rk_auto_failover)
	{
		rk_set_readiness("primary lost %ld ms ago; replication_kit.auto_failover is off: run rk_failover()",
					  v->silence_ms);
		return RK_EV_NONE;
	}
	best = rk_best_candidate(v, reason, sizeof(reason));
	if (v->self_idx >= 0 && v->peers[v->self_idx].priority == 0)
	{
		/*
		 * Never promoted automatically.  But its copy of the registry may
		 * be older than another node's (a priority changed just before the
		 * primary died): it takes the WAL of the node with the most, which
		 * holds the newest registry, and judges again with that.
		 */
		if (best >= 0 && best != v->self_idx && priority_catch_up(v, best))
			return RK_EV_NONE;
		rk_set_readiness("primary lost %ld ms ago; this node has priority 0 and is never promoted automatically "
						 "(the others take its WAL first if it has more)", v->silence_ms);
		return RK_EV_NONE;
	}
	if (best < 0)
	{
		rk_set_readiness("primary lost: %s", reason);
		return RK_EV_NONE;
	}
	if (!rk_quorum_ready(v, reason, sizeof(reason)))
	{
		rk_set_readiness("primary lost %ld ms ago; no automatic failover: %s", v->silence_ms, reason);
		return RK_EV_NONE;
	}
	if (best != v->self_idx && !in_place_of(v, best))
		return RK_EV_NONE;

	initStringInfo(&result);
	if (run_election(v, "auto", begin_term(v), &result))
	{
		strlcpy(v->why, result.data, sizeof(v->why));
		return RK_EV_ELECTION_WON;
	}
	rk_set_readiness("election lost: %s", result.data);
	rk_journal(v, "election_lost", v->self, "%s", result.data);
	return RK_EV_NONE;
}

/*
 * The stored synchronous policy, over the other nodes, in force before this
 * node leaves recovery: its very first commit as the primary waits for the
 * standbys the policy names.  Waits (briefly) until the checkpointer, which
 * tells backends whether commits wait, has taken the new value.
 */
static void
apply_sync_policy(RkView *v)
{
	bool		started = rk_xact_begin();
	bool		wanted = rk_apply_sync_names_for(v->self)[0] != '\0';
	int64		deadline = rk_monotonic_ms() + RK_SYNC_APPLY_WAIT_MS;

	rk_xact_end(started);
	while (rk_sync_standbys_defined() != wanted && rk_monotonic_ms() < deadline)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * PRIMARY_LOST --ELECTION_WON--> PROMOTING (and the same for an operator's
 * failover): create the slots the other nodes will need, while still a
 * standby, so that they reserve WAL from before the switch; hold the lease
 * the votes are; then pg_promote() and wait for it.  The take-over
 * (PROMOTING --IS_PRIMARY-->) runs in the next round, at once.
 */
RkEvent
rk_act_promote(RkView *v)
{
	RkWorkerContext *ctx = v->ctx;
	bool		promoted;

	RkNodeState st;

	/*
	 * The win goes on disk before the promotion: after a crash or a worker
	 * restart, only a node that wrote it may act as the primary of the term
	 * (rk_state_elected()).
	 */
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	st = rk_shared->state;
	if (st.term != ctx->won_term)
	{
		LWLockRelease(rk_shared->lock);
		rk_set_readiness("not promoted: term " UINT64_FORMAT " began after this node won term " UINT64_FORMAT,
						 st.term, ctx->won_term);
		if (ctx->manual_pending)
			rk_manual_answer(ctx, false, "a newer term began before the promotion");
		return RK_EV_NONE;
	}
	st.won_term = ctx->won_term;
	rk_state_save_locked(&st);
	v->st = st;
	LWLockRelease(rk_shared->lock);

	rk_create_peer_slots(v);
	apply_sync_policy(v);
	rk_journal(v, "promote", v->self, "term " UINT64_FORMAT ": %s", ctx->won_term, ctx->won_how);
	pgstat_report_activity(STATE_RUNNING, "promoting");

	/*
	 * The votes are the lease, so hold it before leaving recovery: a client
	 * that reaches the new primary before the take-over round commits at
	 * once instead of being told that no majority answers.
	 */
	rk_grant_lease(v, rk_election_lease_start(ctx, ctx->won_term));
	reserve_timelines(v);
	ctx->promoted_here = true;	/* its new timeline comes from an election */
	promoted = DatumGetBool(DirectFunctionCall2(pg_promote, BoolGetDatum(true),
												Int32GetDatum(RK_PROMOTE_WAIT_SECS)));
	if (!promoted)
		rk_set_readiness("pg_promote() did not finish within %d s", RK_PROMOTE_WAIT_SECS);
	else
		pg_atomic_fetch_add_u64(&rk_shared->n_promotions, 1);
	if (ctx->manual_pending)
	{
		if (promoted)
			appendStringInfo(&ctx->manual_result, "; %s promoted in term " UINT64_FORMAT,
							 v->self, ctx->won_term);
		else
			appendStringInfoString(&ctx->manual_result, "; pg_promote() did not finish");
		rk_manual_answer(ctx, promoted, ctx->manual_result.data);
	}
	SetLatch(MyLatch);
	return RK_EV_NONE;
}

/*
 * A promoted node's lease: the votes were given at won_at_ms, and each voter
 * refuses other candidates for failover_timeout after that.
 */
int64
rk_election_lease_start(RkWorkerContext *ctx, uint64 term)
{
	/*
	 * A worker that restarted between the promotion and the take-over does
	 * not know when the votes were given: no lease until a majority answers.
	 */
	return term == ctx->won_term ? ctx->won_at_ms : 0;
}

/* The explanation an operator gets back from a dry run. */
static void
explain(RkView *v, bool force, StringInfo out)
{
	char		reason[RK_REASON_LEN];
	int			best = rk_best_candidate(v, reason, sizeof(reason));
	const char *primary = v->primary_idx >= 0 ? v->peers[v->primary_idx].name : "(unknown)";
	bool		primary_up = v->primary_idx >= 0 && v->silence_ms < rk_effective_fence_ms();

	appendStringInfo(out, "dry run on %s (term " UINT64_FORMAT ", WAL %X/%X on timeline %u): ",
					 v->self, v->st.term, LSN_FORMAT_ARGS(v->lsn), v->tli);
	appendStringInfo(out, "primary %s %s; ", primary,
					 primary_up ? psprintf("is reachable (contact %ld ms ago)", v->silence_ms)
					 : psprintf("has been silent for %ld ms", v->silence_ms));
	if (best >= 0)
		appendStringInfo(out, "the standby with the most WAL is %s; ", v->peers[best].name);
	if (primary_up && !force)
		appendStringInfo(out, "a failover would be refused while the primary is reachable (force => true fences it first and waits for this node to catch up)");
	else if (primary_up && force)
		appendStringInfo(out, "a forced failover would fence %s, wait until this node has all its WAL, then promote this node: no acknowledged commit lost", primary);
	else
	{
		bool		ready = rk_quorum_ready(v, reason, sizeof(reason));

		if (ready)
			appendStringInfo(out, "an election would have its majority and synchronous quorum: promotion is safe");
		else if (force)
			appendStringInfo(out, "a forced failover would promote without it (%s): commits acknowledged only by the missing nodes may be lost", reason);
		else
			appendStringInfo(out, "a failover would be refused: %s", reason);
	}
}

/*
 * Wait until this node has received WAL up to `target` (the fenced old
 * primary's last flush), for at most RK_CATCH_UP_MS.
 */
static bool
catch_up_to(XLogRecPtr target)
{
	int64		deadline = rk_monotonic_ms() + RK_CATCH_UP_MS;

	while (rk_local_lsn() < target)
	{
		if (rk_monotonic_ms() > deadline)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/* Fence the reachable old primary; returns its last flushed LSN, or Invalid. */
static XLogRecPtr
fence_primary(RkView *v, uint64 term, bool planned, StringInfo result)
{
	RkCall		call;
	char		term_s[32];
	const char *params[3];
	RkFenceAnswer answer;
	XLogRecPtr	lsn = InvalidXLogRecPtr;
	RkPeer	   *p = &v->peers[v->primary_idx];

	snprintf(term_s, sizeof(term_s), UINT64_FORMAT, term);
	params[0] = v->self;
	params[1] = term_s;
	params[2] = planned ? "true" : "false";
	rk_call_init(&call, p->host, p->port, v->peer_user, v->self,
				 psprintf("SELECT * FROM %s.rk_peer_fence($1, $2::bigint, $3::boolean)", v->schema_q),
				 3, params);
	rk_calls_run(&call, 1, rk_probe_timeout_ms * RK_FENCE_CALL_FACTOR);
	if (rk_answer_fence(&call, &answer))
	{
		lsn = answer.lsn;
		appendStringInfo(result, "%s fenced at %X/%X; ", p->name, LSN_FORMAT_ARGS(lsn));
	}
	else
		appendStringInfo(result, "could not fence %s (%s); ", p->name, call.error);
	rk_calls_clear(&call, 1);
	return lsn;
}

/* Is an operator's request (rk_failover, rk_switchover) waiting for this worker? */
bool
rk_manual_request_pending(RkWorkerContext *ctx)
{
	bool		pending;

	LWLockAcquire(rk_shared->lock, LW_SHARED);
	pending = rk_shared->request_seq != rk_shared->done_seq;
	LWLockRelease(rk_shared->lock);
	return pending;
}

/* Take the waiting request: its flags, and its number for the answer. */
static void
take_request(RkWorkerContext *ctx, bool *force, bool *dry_run, bool *planned)
{
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	ctx->manual_seq = rk_shared->request_seq;
	*force = rk_shared->request_force;
	*dry_run = rk_shared->request_dry_run;
	*planned = rk_shared->request_planned;
	LWLockRelease(rk_shared->lock);
	ctx->manual_pending = true;
	ctx->won_loss = false;
	ctx->won_forced = false;
	if (ctx->manual_result.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&ctx->manual_result);
		MemoryContextSwitchTo(old);
	}
	resetStringInfo(&ctx->manual_result);
}

/* Answer the request being handled; the backend waiting for it wakes up. */
void
rk_manual_answer(RkWorkerContext *ctx, bool ok, const char *result)
{
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	strlcpy(rk_shared->result, result, sizeof(rk_shared->result));
	rk_shared->result_ok = ok;
	rk_shared->result_forced_loss = ok && ctx->won_loss;
	rk_shared->done_seq = ctx->manual_seq;
	LWLockRelease(rk_shared->lock);
	ctx->manual_pending = false;
}

/* PRIMARY, FENCED, REJOINING --MANUAL_FAILOVER-->: nothing to promote here. */
RkEvent
rk_act_refuse_manual(RkView *v)
{
	bool		force,
				dry_run,
				planned;

	take_request(v->ctx, &force, &dry_run, &planned);
	rk_manual_answer(v->ctx, false, psprintf("%s is already the primary", v->self));
	return RK_EV_NONE;
}

/*
 * With the primary still reachable (force or a switchover): fence it, take
 * all its WAL, then hold the election the fence already decided.  Nothing
 * acknowledged is lost.
 */
static bool
failover_from_live_primary(RkView *v, bool planned, StringInfo result)
{
	uint64		term = begin_term(v);
	XLogRecPtr	upto = fence_primary(v, term, planned, result);
	StringInfoData votes;

	if (XLogRecPtrIsInvalid(upto))
	{
		appendStringInfo(result, "refusing to promote next to a primary that could not be fenced");
		return false;
	}
	if (!catch_up_to(upto))
	{
		appendStringInfo(result, "this node did not receive the primary's WAL up to %X/%X within %d s; the primary stays fenced, run rk_failover again",
						 LSN_FORMAT_ARGS(upto), RK_CATCH_UP_MS / 1000);
		return false;
	}
	initStringInfo(&votes);
	rk_election_position(&v->tli, &v->lsn);
	if (!run_election(v, "force", term, &votes))
	{
		appendStringInfo(result, "caught up, but %s; the primary stays fenced and the standbys elect a new one",
						 votes.data);
		return false;
	}
	appendStringInfo(result, "caught up; %s", votes.data);
	v->ctx->won_term = v->st.term;
	return true;
}

/*
 * A forced failover that cannot reach the primary from here must not
 * promote next to a primary that is alive elsewhere: if another node had
 * contact with it within failover_timeout (by its last probe), the primary
 * still runs, may still hold its lease, and this node cannot fence it.
 * Returns true (and says so in `result`) in that case.
 */
static bool
primary_alive_elsewhere(RkView *v, StringInfo result)
{
	for (int i = 0; i < v->npeers; i++)
	{
		RkPeer	   *p = &v->peers[i];

		if (p->is_self || i == v->primary_idx || !p->reachable || !p->in_recovery)
			continue;
		if (p->silence_ms < rk_vote_wait_ms(true))
		{
			appendStringInfo(result, "the primary %s is not reachable from %s, but %s had contact with it %ld ms ago: it is alive and cannot be fenced from here; fix the network or stop it, then try again",
							 v->primary_idx >= 0 ? v->peers[v->primary_idx].name : "(unknown)",
							 v->self, p->name, p->silence_ms);
			return true;
		}
	}
	return false;
}

/*
 * FOLLOWING, SUSPECTING, PRIMARY_LOST --MANUAL_FAILOVER-->: an operator's
 * failover (or switchover) to this node.  A dry run only explains; a
 * refused one answers at once; a won election returns ELECTION_WON, and
 * the promotion answers.
 */
RkEvent
rk_act_manual_failover(RkView *v)
{
	RkWorkerContext *ctx = v->ctx;
	StringInfo	result = &ctx->manual_result;
	bool		force,
				dry_run,
				planned;
	bool		primary_up;
	bool		ok;
	char		reason[RK_REASON_LEN];

	take_request(ctx, &force, &dry_run, &planned);
	if (dry_run)
	{
		explain(v, force, result);
		rk_manual_answer(ctx, true, result->data);
		return RK_EV_NONE;
	}

	primary_up = v->primary_idx >= 0 && !v->peers[v->primary_idx].is_self &&
		v->silence_ms < rk_effective_fence_ms();
	rk_journal(v, planned ? "switchover" : "manual_failover", v->self, "requested%s",
			   force && !planned ? " with force" : "");
	if (planned && !primary_up)
	{
		appendStringInfo(result, "the primary %s is not reachable (no contact for %ld ms); a switchover needs a healthy primary: use rk_failover()",
						 v->primary_idx >= 0 ? v->peers[v->primary_idx].name : "(unknown)", v->silence_ms);
		ok = false;
	}
	else if (primary_up && !force)
	{
		appendStringInfo(result, "the primary %s is reachable (contact %ld ms ago); pass force => true to fence it and fail over anyway",
						 v->peers[v->primary_idx].name, v->silence_ms);
		ok = false;
	}
	else if (primary_up)
		ok = failover_from_live_primary(v, planned, result);
	else if (force && primary_alive_elsewhere(v, result))
		ok = false;
	else if (!force && !rk_quorum_ready(v, reason, sizeof(reason)))
	{
		appendStringInfo(result, "%s; pass force => true to promote anyway", reason);
		ok = false;
	}
	else
		ok = run_election(v, force ? "force" : "manual", begin_term(v), result);

	if (!ok)
	{
		rk_manual_answer(ctx, false, result->data);
		return RK_EV_NONE;
	}
	strlcpy(ctx->won_how, result->data, sizeof(ctx->won_how));
	ctx->won_at_ms = v->mono;
	strlcpy(v->why, result->data, sizeof(v->why));
	return RK_EV_ELECTION_WON;
}
