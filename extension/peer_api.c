/*-------------------------------------------------------------------------
 *
 * peer_api.c
 *		What the nodes ask each other.
 *
 *		rk_peer_state(caller, caller_term, caller_is_primary)
 *			"who are you, how far is your WAL, whom do you follow";
 *			a call from the primary also counts as contact with it.
 *		rk_request_vote(candidate, term, timeline, lsn, mode)
 *			a vote for a candidate in a new term, given at most once
 *			per term and written to disk before it is answered.
 *		rk_peer_fence(caller, term, planned)
 *			"stop acknowledging commits": a forced failover or a
 *			switchover fences the primary it can still reach.
 *		rk_peer_failover(force, dry_run, planned)
 *			hand a manual failover or switchover to this node's worker.
 *		rk_peer_secret(secret)
 *			the node role's secret, for a node that lacks it.
 *		rk_peer_credentials(caller)
 *			the replication role's current password, for a node that
 *			was away when it changed.
 *
 * They run in ordinary backends of the node being asked, connected as the
 * kit's node role (core/credentials.c), so they take rk_shared->lock themselves and
 * never trust the caller for more than the numbers it sends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq/libpq-be.h"
#include "replication/walsender.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/walreceiver.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "core/credentials.h"
#include "core/guard.h"
#include "core/local.h"
#include "core/node_state.h"
#include "core/peer.h"
#include "core/registry.h"
#include "core/settings.h"
#include "core/shmem.h"
#include "core/upstream.h"
#include "extension/extension.h"

PG_FUNCTION_INFO_V1(rk_peer_state);
PG_FUNCTION_INFO_V1(rk_request_vote);
PG_FUNCTION_INFO_V1(rk_peer_fence);
PG_FUNCTION_INFO_V1(rk_peer_secret);
PG_FUNCTION_INFO_V1(rk_peer_credentials);
PG_FUNCTION_INFO_V1(rk_peer_failover);
PG_FUNCTION_INFO_V1(rk_peer_resume);


/* Is this connection safe from the network: TLS, or a local socket? */
static bool
connection_private(void)
{
	return MyProcPort == NULL || MyProcPort->ssl_in_use ||
		MyProcPort->raddr.addr.ss_family == AF_UNIX;
}

/* Is `a` the address the connection came from? */
static bool
same_address(const struct sockaddr *a, const struct sockaddr_storage *peer)
{
	if (a->sa_family != peer->ss_family)
		return false;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *) a)->sin_addr,
					  &((const struct sockaddr_in *) peer)->sin_addr, sizeof(struct in_addr)) == 0;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *) a)->sin6_addr,
					  &((const struct sockaddr_in6 *) peer)->sin6_addr, sizeof(struct in6_addr)) == 0;
	return false;
}

/*
 * Did this connection come from `host`, a registered address?  A host
 * written as an address is compared as such.  A DNS name is not resolved
 * here (a call has a deadline of a second, and a slow resolver during a
 * partition would cost every probe and every vote): it is compared with
 * the addresses the worker last resolved it to (resolve_host_names); a
 * name the worker has not resolved matches nothing.
 */
static bool
connection_from(const char *host)
{
	const struct sockaddr_storage *peer = &MyProcPort->raddr.addr;
	struct addrinfo hints = {0};
	struct addrinfo *res = NULL;
	bool		match = false;

	if (peer->ss_family != AF_INET && peer->ss_family != AF_INET6)
		return false;
	if (!rk_host_is_address(host))
	{
		LWLockAcquire(rk_shared->lock, LW_SHARED);
		for (int i = 0; i < rk_shared->nresolved && !match; i++)
		{
			RkResolvedHost *r = &rk_shared->resolved[i];

			if (strcmp(r->host, host) != 0)
				continue;
			for (int k = 0; k < r->naddr && !match; k++)
				match = same_address((const struct sockaddr *) &r->addr[k], peer);
		}
		LWLockRelease(rk_shared->lock);
		return match;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return false;
	for (struct addrinfo *a = res; a != NULL && !match; a = a->ai_next)
		match = same_address(a->ai_addr, peer);
	freeaddrinfo(res);
	return match;
}

/*
 * A caller that is not a superuser must be a registered node (`caller`, or
 * any node when the call names none), connected from that node's
 * registered address.  The list is the one the worker keeps in the node
 * state file, so it holds right after a restart too.
 */
static void
require_registered_caller(const char *funcname, const char *caller)
{
	RkNodeState st;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_state_load_locked();
	st = rk_shared->state;
	LWLockRelease(rk_shared->lock);
	for (int i = 0; i < st.npeers; i++)
	{
		if (caller != NULL && strcmp(st.peer_name[i], caller) != 0)
			continue;
		if (MyProcPort != NULL && connection_from(st.peer_host[i]))
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for function %s", funcname),
			 caller ? errdetail("\"%s\" is not another registered node connected from its registered address (the call came from %s).",
							   caller, MyProcPort && MyProcPort->remote_host ? MyProcPort->remote_host : "a local socket")
			 : errdetail("The call did not come from a registered node's address (it came from %s).",
						 MyProcPort && MyProcPort->remote_host ? MyProcPort->remote_host : "a local socket"),
			 errhint("Only the kit's workers call the node-to-node functions.")));
}

/*
 * Callers are other nodes' workers, as the node role, or superusers; the
 * replication role streams WAL and nothing more.  A name from another node
 * ends up in the state file: the node-name rule comes first, whoever calls.
 */
static void
require_peer(const char *funcname, const char *caller)
{
	rk_require_preloaded();
	if (!rk_is_node_caller())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", funcname),
				 errdetail("Only superusers and the kit's node role \"%s\" may call the node-to-node functions.",
						   RK_NODE_ROLE)));
	rk_require_same_cluster(funcname);
	if (caller != NULL)
		rk_validate_node_name(caller);
	if (!superuser())
		require_registered_caller(funcname, caller);
	if (rk_partitioned_from(caller))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("node \"%s\" is cut off from this node by replication_kit.simulate_partition", caller)));
}

/*
 * Act on the kit's own authority (the bootstrap superuser) for a step the
 * calling node role may not take itself; the caller puts back the saved
 * user with SetUserIdAndSecContext (an error does so too).
 */
static void
kit_authority_begin(Oid *save_user, int *save_sec)
{
	GetUserIdAndSecContext(save_user, save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, *save_sec | SECURITY_LOCAL_USERID_CHANGE);
}

/*
 * A term another node sends: a whole number from 1 to RK_TERM_MAX (0 where
 * `zero_ok`: a node that has seen no term yet).  A negative bigint would
 * otherwise become a term near 2^64, after which every term wraps.
 */
static uint64
peer_term(FunctionCallInfo fcinfo, int argno, bool zero_ok)
{
	int64		term;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("term must not be null")));
	term = PG_GETARG_INT64(argno);
	if (term < (zero_ok ? 0 : 1) || term > RK_TERM_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("term " INT64_FORMAT " is out of range", term),
				 errdetail("A term is a whole number from %d to " INT64_FORMAT ".", zero_ok ? 0 : 1,
						   (int64) RK_TERM_MAX)));
	return (uint64) term;
}

static void
wake_worker_locked(void)
{
	if (rk_shared->worker_latch)
		SetLatch(rk_shared->worker_latch);
}

/*
 * rk_peer_state(caller, caller_term, caller_is_primary): this node's view,
 * for the worker of another node.  A primary's call in a term no older than
 * ours is contact with the primary: it is what keeps the standbys from
 * electing a new one, and what the primary's lease is made of.
 */
Datum
rk_peer_state(PG_FUNCTION_ARGS)
{
	char	   *caller = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		caller_is_primary = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	uint64		caller_term;
	TupleDesc	tupdesc;
	Datum		values[15];
	bool		nulls[15] = {0};
	bool		paused;
	uint64		pause_id;
	char	   *name;
	const char *primary;
	bool		in_recovery = RecoveryInProgress();
	TimestampTz now = GetCurrentTimestamp();
	RkNodeState st;
	int64		seen_ms;
	TimeLineID	tli;
	XLogRecPtr	lsn;

	require_peer("rk_peer_state", caller);
	caller_term = peer_term(fcinfo, 1, !caller_is_primary);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	name = rk_self_name();

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_state_load_locked();
	st = rk_shared->state;
	if (caller_is_primary && caller != NULL && caller_term >= st.term)
	{
		if (in_recovery)
		{
			/*
			 * Contact with the primary.  A newer term, or a primary we did
			 * not know, is news for the worker, which re-points to it.
			 */
			bool		news = caller_term > st.term || strcmp(st.primary_name, caller) != 0;

			st.term = caller_term;
			strlcpy(st.primary_name, caller, NAMEDATALEN);
			rk_state_save_locked(&st);
			rk_shared->last_seen_primary = now;
			rk_shared->last_seen_primary_ms = rk_monotonic_ms();
			if (news)
				wake_worker_locked();
		}
		else if (caller_term > st.term && name != NULL && strcmp(caller, name) != 0)
		{
			/* Another primary in a newer term: this one is deposed, at once. */
			pg_atomic_write_u32(&rk_shared->fenced, 1);
			st.term = caller_term;
			strlcpy(st.primary_name, caller, NAMEDATALEN);
			rk_state_save_locked(&st);
			wake_worker_locked();
		}
	}
	seen_ms = rk_shared->last_seen_primary_ms;
	paused = rk_shared->paused;
	pause_id = rk_shared->pause_id;
	LWLockRelease(rk_shared->lock);

	values[0] = name ? CStringGetTextDatum(name) : (Datum) 0;
	nulls[0] = name == NULL;
	values[1] = BoolGetDatum(in_recovery);
	rk_election_position(&tli, &lsn);
	values[2] = Int32GetDatum((int32) tli);
	values[3] = LSNGetDatum(lsn);
	values[4] = Int64GetDatum((int64) st.term);
	/*
	 * In recovery, a node names itself the primary only while it is the
	 * winner of the current term being promoted: the others then wait for
	 * its take-over instead of running a term of their own that would
	 * depose it (rk_quorum_ready).  A primary demoted by hand, or one that
	 * started as a standby, still has its own name on disk from its term:
	 * that names nobody.  Derived here, not kept.
	 */
	primary = st.primary_name;
	if (in_recovery && name != NULL)
		primary = rk_state_elected(&st) ? name : strcmp(st.primary_name, name) == 0 ? "" : st.primary_name;
	values[5] = CStringGetTextDatum(primary);
	nulls[5] = primary[0] == '\0';
	values[6] = CStringGetTextDatum(st.voted_for);
	nulls[6] = st.voted_for[0] == '\0' || st.voted_term != st.term;
	/* Milliseconds since this node last had contact with the primary. */
	values[7] = Int64GetDatum(in_recovery ? Max(0, rk_monotonic_ms() - seen_ms) : 0);
	values[8] = BoolGetDatum(!in_recovery && !rk_acknowledges_commits());
	/* From 1.3: whether this node lacks the node role's secret (rk_peer_secret). */
	/* Not before the worker has looked: a node just started would ask every time. */
	values[9] = BoolGetDatum(rk_shared->node_secret_checked && !rk_shared->node_secret_ok);
	/* Its timing settings, which bound the other nodes' (rk_effective_fence_ms). */
	values[10] = Int64GetDatum(rk_failover_timeout_ms);
	values[11] = Int64GetDatum(rk_effective_fence_ms());
	/* From 1.5: the timeline it is on, which values[2] is not on its own unelected one. */
	values[12] = Int32GetDatum((int32) rk_current_timeline());
	/* From 1.6: the maintenance pause as this node judges it (worker/pause.c). */
	values[13] = BoolGetDatum(paused);
	values[14] = Int64GetDatum((int64) pause_id);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* A vote request as received, and what the voter compares it with. */
typedef struct VoteRequest
{
	const char *candidate;
	uint64		term;
	TimeLineID	tli;
	XLogRecPtr	lsn;
	bool		forced;			/* mode 'force': an operator overrode the checks */
	bool		automatic;		/* mode 'auto': no operator asked for it */
	int			need_ms;		/* silence from the primary a vote needs */
	const char *self;
	TimeLineID	my_tli;
	XLogRecPtr	my_lsn;
	bool		left_old_stream;	/* streams from the candidate now */
} VoteRequest;

/*
 * Why this node must refuse the vote, or RK_REFUSAL_NONE.  Called with
 * rk_shared->lock held; `reason` gets the words for people.
 */
static RkRefusal
judge_vote(const VoteRequest *rq, const RkNodeState *st, char *reason)
{
	long		silence_ms = (long) Max(0, rk_monotonic_ms() - rk_shared->last_seen_primary_ms);
	const char *self = rq->self ? rq->self : "this node";

	if (rq->term < st->term || (rq->term == st->term && st->voted_term == rq->term &&
								st->voted_for[0] != '\0' && strcmp(st->voted_for, rq->candidate) != 0))
	{
		snprintf(reason, RK_REASON_LEN, "already in term " UINT64_FORMAT " with a vote for %s",
				 st->term, st->voted_term == st->term && st->voted_for[0] ? st->voted_for : "nobody");
		return RK_REFUSAL_OLD_TERM;
	}
	if (!RecoveryInProgress())
	{
		snprintf(reason, RK_REASON_LEN, "%s is a primary, not a standby", self);
		return RK_REFUSAL_NOT_STANDBY;
	}

	/* The winner of the current term, still promoting: it votes for nobody else. */
	if (rk_state_elected(st) && strcmp(rq->candidate, st->node_name) != 0)
	{
		snprintf(reason, RK_REASON_LEN, "%s won term " UINT64_FORMAT " and is being promoted",
				 self, st->term);
		return RK_REFUSAL_OLD_TERM;
	}

	/*
	 * A paused cluster has no automatic elections: not only does no paused
	 * candidate run, no paused voter grants one (a candidate whose copy of
	 * the registry has not replayed the pause yet).  An operator's
	 * failover goes on.
	 */
	if (rq->automatic && rk_shared->paused)
	{
		snprintf(reason, RK_REASON_LEN, "%s holds the cluster paused (pause " UINT64_FORMAT "): no automatic election",
				 self, rk_shared->pause_id);
		return RK_REFUSAL_PAUSED;
	}

	/*
	 * Before its local WAL is replayed, this node cannot say whether it has
	 * more WAL than the candidate, in any mode: WAL on its disk may hold
	 * commits the candidate lacks.
	 */
	if (!rk_shared->wal_end_known)
	{
		snprintf(reason, RK_REASON_LEN, "%s has not finished replaying its local WAL (at %X/%X)",
				 self, LSN_FORMAT_ARGS(rq->my_lsn));
		return RK_REFUSAL_WAL_UNKNOWN;
	}
	if (!rq->forced && silence_ms < rq->need_ms)
	{
		snprintf(reason, RK_REASON_LEN, "%s had contact with primary %s %ld ms ago",
				 self, st->primary_name[0] ? st->primary_name : "(unknown)", silence_ms);
		return RK_REFUSAL_PRIMARY_CONTACT;
	}
	if (!rq->forced && !rq->left_old_stream && rk_walreceiver_hears_primary(rq->need_ms) &&
		!rk_upstream_answers_fenced_locked())
	{
		snprintf(reason, RK_REASON_LEN, "%s still receives WAL from its primary", self);
		return RK_REFUSAL_RECEIVES_WAL;
	}
	if (!rq->forced &&
		rk_monotonic_ms() - rk_shared->last_vote_ms < rk_vote_wait_ms(true) &&
		st->voted_term < rq->term && st->voted_for[0] != '\0' && strcmp(st->voted_for, rq->candidate) != 0)
	{
		snprintf(reason, RK_REASON_LEN, "voted for %s in term " UINT64_FORMAT " less than failover_timeout ago",
				 st->voted_for, st->voted_term);
		return RK_REFUSAL_RECENT_VOTE;
	}
	if (rq->my_tli > rq->tli || (rq->my_tli == rq->tli && rq->my_lsn > rq->lsn))
	{
		snprintf(reason, RK_REASON_LEN, "%s has more WAL (%X/%X on timeline %u)",
				 self, LSN_FORMAT_ARGS(rq->my_lsn), rq->my_tli);
		return RK_REFUSAL_MORE_WAL;
	}
	return RK_REFUSAL_NONE;
}

/* A registered node's host and port, as the worker last read them; false if it is none. */
static bool
node_address(const char *name, char *host, int *port)
{
	host[0] = '\0';
	*port = 0;
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	for (int i = 0; i < rk_shared->npeers; i++)
		if (strcmp(rk_shared->peers[i].name, name) == 0)
		{
			strlcpy(host, rk_shared->peers[i].host, RK_HOST_LEN);
			*port = rk_shared->peers[i].port;
		}
	LWLockRelease(rk_shared->lock);
	return host[0] != '\0';
}

/*
 * Point this standby's WAL receiver at `candidate` and wait until no stream
 * from anywhere else is left.  A synchronous standby that voted but still
 * streamed from the old primary would acknowledge that primary's waiting
 * commits if it resumed after a pause, and the winner's timeline does not
 * hold them.  Returns whether that is confirmed; *refusal is set if the
 * vote cannot be granted at all (the candidate is no node this one knows).
 */
static bool
leave_old_stream(const char *candidate, const char *role, RkRefusal *refusal, char *reason)
{
	char		host[RK_HOST_LEN];
	int			port;
	Oid			save_user;
	int			save_sec;
	int			wait_ms;
	pid_t		pid;

	*refusal = RK_REFUSAL_NONE;
	if (!RecoveryInProgress())
		return false;			/* judge_vote refuses */
	if (!node_address(candidate, host, &port))
	{
		snprintf(reason, RK_REASON_LEN, "%s is not a node this node knows", candidate);
		*refusal = RK_REFUSAL_RECEIVES_WAL;
		return false;
	}

	if (rk_receiver_targets(host, port, &pid))
		return true;

	/*
	 * The caller is another node's worker under the node role, which may
	 * not ALTER SYSTEM; the kit does it on its own authority, with a
	 * conninfo it builds itself from the registry's host and port.
	 */
	kit_authority_begin(&save_user, &save_sec);
	rk_point_upstream(host, port, rk_self_name(), role[0] ? role : NULL);
	SetUserIdAndSecContext(save_user, save_sec);

	/*
	 * A WAL receiver that cannot stop (hung, or stopped by a signal) must
	 * not cost the cluster its election: the answer has to reach the
	 * candidate within its call's deadline.  Such a receiver cannot
	 * acknowledge anything while it hangs, and the old primary withholds
	 * acknowledgements once its lease has run out (the commit guard).
	 */
	wait_ms = Min(RK_STREAM_SWITCH_MAX_MS, rk_probe_timeout_ms / 3);
	if (rk_end_other_streams(host, port, wait_ms))
		return true;
	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "the WAL receiver did not leave its old primary within %d ms; the vote for %s is judged without waiting longer",
					wait_ms, candidate),
			 errhidestmt(true)));
	return false;
}

/* The arguments of rk_request_vote, checked, and what this node compares them with. */
static void
read_vote_request(FunctionCallInfo fcinfo, VoteRequest *rq)
{
	char	   *mode;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rk_request_vote arguments must not be null")));
	rq->candidate = text_to_cstring(PG_GETARG_TEXT_PP(0));
	rq->term = peer_term(fcinfo, 1, false);
	/* A negative integer would become a timeline near 2^32: "more WAL" than anyone. */
	if (PG_GETARG_INT32(2) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("timeline %d is out of range", PG_GETARG_INT32(2)),
				 errdetail("A timeline is a whole number from 1 to %d.", PG_INT32_MAX)));
	rq->tli = (TimeLineID) PG_GETARG_INT32(2);
	rq->lsn = PG_GETARG_LSN(3);
	mode = text_to_cstring(PG_GETARG_TEXT_PP(4));
	require_peer("rk_request_vote", rq->candidate);
	if (strcmp(mode, "auto") != 0 && strcmp(mode, "manual") != 0 && strcmp(mode, "force") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid vote mode \"%s\"", mode)));
	rq->forced = strcmp(mode, "force") == 0;
	rq->automatic = strcmp(mode, "auto") == 0;
	rq->need_ms = rk_vote_wait_ms(strcmp(mode, "auto") == 0);
	rq->self = rk_self_name();
	rk_election_position(&rq->my_tli, &rq->my_lsn);

	/*
	 * A voter that streams from the candidate already (it caught up from
	 * it, or voted for it before) has left the old primary's stream: what
	 * leave_old_stream() would do is done.
	 */
	rq->left_old_stream = false;
	if (RecoveryInProgress())
	{
		char		host[RK_HOST_LEN];
		int			port;
		pid_t		pid;

		rq->left_old_stream = node_address(rq->candidate, host, &port) &&
			rk_receiver_targets(host, port, &pid) && pid != 0;
	}
}

/*
 * rk_request_vote(candidate, term, timeline, lsn, mode): vote for
 * `candidate` as the primary of `term`, or say why not.  mode is 'auto'
 * (the voter must not have reached the primary for failover_timeout),
 * 'manual' (not for the fence timeout, so the old primary's lease has run
 * out) or 'force' (an operator overrode the checks).  In every mode the
 * voter refuses a candidate with less WAL than itself, and votes at most
 * once per term; the vote is on disk before the answer leaves.
 */
Datum
rk_request_vote(PG_FUNCTION_ARGS)
{
	VoteRequest rq;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {0};
	RkRefusal	refusal;
	char		reason[RK_REASON_LEN] = "";
	bool		granted;
	RkNodeState st;

	read_vote_request(fcinfo, &rq);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_state_load_locked();
	st = rk_shared->state;
	refusal = judge_vote(&rq, &st, reason);
	LWLockRelease(rk_shared->lock);

	/*
	 * A voter for another node stops acknowledging WAL to the old primary
	 * before it grants: it streams from the candidate from now on.  Then it
	 * judges again, with how far its WAL went before the old stream ended.
	 */
	if (refusal == RK_REFUSAL_NONE && strcmp(rq.candidate, st.node_name) != 0)
	{
		rq.left_old_stream = leave_old_stream(rq.candidate, st.repl_role, &refusal, reason);
		rk_election_position(&rq.my_tli, &rq.my_lsn);
	}

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_state_load_locked();
	st = rk_shared->state;
	if (refusal == RK_REFUSAL_NONE)
		refusal = judge_vote(&rq, &st, reason);
	granted = refusal == RK_REFUSAL_NONE;
	if (granted)
	{
		st.term = rq.term;
		st.voted_term = rq.term;
		strlcpy(st.voted_for, rq.candidate, NAMEDATALEN);
		st.primary_name[0] = '\0';	/* nobody's, until the winner says so */
		rk_state_save_locked(&st);
		rk_shared->last_vote_ms = rk_monotonic_ms();
		pg_atomic_fetch_add_u64(&rk_shared->n_votes, 1);
		snprintf(reason, sizeof(reason), "vote granted in term " UINT64_FORMAT, rq.term);
	}
	LWLockRelease(rk_shared->lock);

	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "vote %s to %s for term " UINT64_FORMAT ": %s",
					granted ? "given" : "refused", rq.candidate, rq.term, reason),
			 errhidestmt(true)));

	values[0] = BoolGetDatum(granted);
	values[1] = Int64GetDatum((int64) Max(st.term, rq.term));
	values[2] = Int32GetDatum((int32) rq.my_tli);
	values[3] = LSNGetDatum(rq.my_lsn);
	values[4] = CStringGetTextDatum(reason);
	values[5] = CStringGetTextDatum(rk_refusal_code(refusal));
	nulls[5] = granted;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * rk_peer_fence(caller, term): this node stops acknowledging commits now,
 * and learns that `caller` takes over in `term`.  Returns how far its WAL
 * goes, which the caller waits for before it promotes.
 */
Datum
rk_peer_fence(PG_FUNCTION_ARGS)
{
	char	   *caller = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	uint64		term;
	bool		planned = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {0};
	RkNodeState st;
	bool		was_primary = !RecoveryInProgress();

	require_peer("rk_peer_fence", caller);
	if (caller == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("caller must not be null")));
	term = peer_term(fcinfo, 1, false);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_state_load_locked();
	st = rk_shared->state;
	if (term < st.term)
	{
		LWLockRelease(rk_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("term " UINT64_FORMAT " is older than this node's term " UINT64_FORMAT, term, st.term)));
	}
	if (was_primary)
	{
		pg_atomic_write_u32(&rk_shared->fenced, 1);
		strlcpy(rk_shared->fence_target, caller, NAMEDATALEN);
	}
	/* A switchover turns the old primary into a standby whatever auto_rejoin says. */
	if (was_primary && planned)
		rk_shared->rejoin_requested = true;
	st.term = term;
	strlcpy(st.primary_name, caller, NAMEDATALEN);
	rk_state_save_locked(&st);
	wake_worker_locked();
	LWLockRelease(rk_shared->lock);

	/*
	 * No other standby may get WAL the caller will not have when it is
	 * promoted: a fenced primary still writes some (the aborts of refused
	 * commits).  Disconnect every WAL sender but the caller's (new ones are
	 * refused by rk_replication_gate), and only then read how far the WAL
	 * goes: nobody else has more, and the caller waits until it has that.
	 * Commits that passed the guard before the flag was set are done
	 * writing by then too.
	 */
	if (was_primary)
	{
		Oid			save_user;
		int			save_sec;

		/*
		 * On the kit's authority: the node role may not end other roles'
		 * processes, and would not even see whose WAL sender is whose.
		 */
		kit_authority_begin(&save_user, &save_sec);
		rk_cut_walsenders(caller, false, RK_WALSENDER_CUT_TRIES);
		SetUserIdAndSecContext(save_user, save_sec);
	}

	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "fenced by %s for term " UINT64_FORMAT, caller, term),
			 errhidestmt(true)));
	values[0] = BoolGetDatum(was_primary);
	values[1] = LSNGetDatum(rk_local_lsn());
	values[2] = Int32GetDatum((int32) rk_current_timeline());
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Ask this node's worker for a manual failover to this node and wait for
 * its answer.  Used by rk_failover() here and by rk_peer_failover() for a
 * caller on another node.
 */
bool
rk_local_failover(bool force, bool dry_run, bool planned, char **result, bool *forced_loss)
{
	uint32		seq;
	int64		deadline = rk_monotonic_ms() + RK_MANUAL_ANSWER_MS;

	*forced_loss = false;
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	if (!RecoveryInProgress())
	{
		LWLockRelease(rk_shared->lock);
		*result = psprintf("%s is already the primary", rk_shared->state.node_name);
		return false;
	}
	if (rk_shared->worker_latch == NULL || !rk_shared->registry_seen)
	{
		LWLockRelease(rk_shared->lock);
		*result = psprintf("the replication_kit worker of this node %s",
						   rk_shared->worker_latch == NULL ? "is not running"
						   : "has not read the registry: is the extension created in replication_kit.database?");
		return false;
	}
	seq = ++rk_shared->request_seq;
	rk_shared->request_force = force;
	rk_shared->request_dry_run = dry_run;
	rk_shared->request_planned = planned;
	wake_worker_locked();
	LWLockRelease(rk_shared->lock);

	for (;;)
	{
		bool		done;

		LWLockAcquire(rk_shared->lock, LW_SHARED);
		done = rk_shared->done_seq == seq;
		if (done)
		{
			bool		ok = rk_shared->result_ok;

			*result = pstrdup(rk_shared->result);
			*forced_loss = rk_shared->result_forced_loss;
			LWLockRelease(rk_shared->lock);
			return ok;
		}
		LWLockRelease(rk_shared->lock);
		if (rk_monotonic_ms() > deadline)
		{
			*result = pstrdup(psprintf("the worker did not answer within %d s", RK_MANUAL_ANSWER_MS / 1000));
			return false;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * rk_peer_failover(force, dry_run, planned): a manual failover (planned: a
 * switchover) to this node, for a caller elsewhere.  Answers with typed
 * columns: whether it happened, whether it was forced past the majority or
 * the synchronous quorum (acknowledged commits may be lost), and the
 * explanation for the operator.
 */
Datum
rk_peer_failover(PG_FUNCTION_ARGS)
{
	bool		force = PG_ARGISNULL(0) ? false : PG_GETARG_BOOL(0);
	bool		dry_run = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	bool		planned = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {0};
	char	   *result;
	bool		forced_loss;

	require_peer("rk_peer_failover", NULL);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = BoolGetDatum(rk_local_failover(force, dry_run, planned, &result, &forced_loss));
	values[1] = BoolGetDatum(forced_loss);
	values[2] = CStringGetTextDatum(result);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * rk_peer_secret(secret): another node hands over the node role's secret,
 * which this node lacks (a fresh clone: no base backup carries it).  Only a
 * caller that logged in as the node role (so knows the secret) gets here,
 * and the secret is kept only if it matches the role's verifier in
 * pg_authid: nobody can plant another.  Statements of the node role's
 * sessions are not logged (rk_create_replicator sets that on the role).
 */
Datum
rk_peer_secret(PG_FUNCTION_ARGS)
{
	char	   *secret = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));

	require_peer("rk_peer_secret", NULL);
	if (rk_tls_required() && !connection_private())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the node secret is not taken over an unencrypted connection"),
				 errdetail("replication_kit.sslmode is %s (%s here).", rk_sslmode, rk_tls_sslmode()),
				 errhidestmt(true)));
	if (secret == NULL || strlen(secret) != 64 || strspn(secret, "0123456789abcdef") != 64 ||
		!rk_node_secret_valid(secret))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD),
				 errmsg("that is not the node role's secret"),
				 errhidestmt(true)));
	if (!rk_node_secret_valid(rk_node_secret()))
	{
		rk_node_secret_write(secret);
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "received the node role's secret from another node"),
				 errhidestmt(true)));
	}
	rk_shared->node_secret_ok = true;
	memset(secret, 0, strlen(secret));
	PG_RETURN_BOOL(true);
}

/*
 * rk_peer_credentials(caller): the replication role and its password, as
 * rk_credentials on this node holds them.  A standby that was down while
 * the password changed cannot stream the change with the old password it
 * still has, so its worker asks here, as the node role, and writes what it
 * gets into its password file (worker.c).  Only for a registered node from
 * its own address; never over an unencrypted connection when the kit's
 * connections must be encrypted; the statement is not logged.
 */
Datum
rk_peer_credentials(PG_FUNCTION_ARGS)
{
	char	   *caller = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	Oid			save_user;
	int			save_sec;
	char	   *role = NULL;
	char	   *password = NULL;

	if (caller == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rk_peer_credentials arguments must not be null")));
	require_peer("rk_peer_credentials", caller);
	if (rk_tls_required() && !connection_private())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the replication password is not handed over an unencrypted connection"),
				 errdetail("replication_kit.sslmode is %s (%s here).", rk_sslmode, rk_tls_sslmode()),
				 errhidestmt(true)));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	kit_authority_begin(&save_user, &save_sec);
	if (rk_credentials_current(&role, &password) == false)
		nulls[0] = nulls[1] = true;
	SetUserIdAndSecContext(save_user, save_sec);
	if (!nulls[0])
	{
		values[0] = CStringGetTextDatum(role);
		values[1] = CStringGetTextDatum(password);
		memset(password, 0, strlen(password));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/*
 * rk_peer_resume(caller, pause_id): another node's rk_resume() of the
 * registry's pause `pause_id`, made while the primary could not clear it.
 * Only a pause this node knows of (its registry copy names it or a later
 * one) is ended, and only here: in the state file, fsynced, before the
 * answer.  A primary's worker then clears it in the registry.  Returns
 * whether it was news.
 */
Datum
rk_peer_resume(PG_FUNCTION_ARGS)
{
	char	   *caller = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		pause_id = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	Oid			save_user;
	int			save_sec;
	char	   *known;
	bool		news;

	if (caller == NULL || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rk_peer_resume arguments must not be null")));
	require_peer("rk_peer_resume", caller);
	if (!rk_extension_at_least("1.6"))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("this node's replication_kit extension predates pauses")));
	kit_authority_begin(&save_user, &save_sec);
	known = rk_query_value(psprintf("SELECT pause_id FROM %s", rk_table("rk_cluster")), 0, NULL, NULL);
	SetUserIdAndSecContext(save_user, save_sec);
	if (pause_id <= 0 || known == NULL || pause_id > strtoll(known, NULL, 10))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pause " INT64_FORMAT " is not known here", pause_id),
				 errdetail("This node's registry knows pauses up to %s.", known ? known : "none")));

	news = rk_state_note_resumed((uint64) pause_id);
	if (news)
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "pause " INT64_FORMAT " ended here: %s handed on an rk_resume()", pause_id, caller)));
	PG_RETURN_BOOL(news);
}
