/*-------------------------------------------------------------------------
 *
 * follow.c
 *		The node's role after a change of primary, and the actions of the
 *		primary side of the state machine:
 *
 *		- a standby re-points primary_conninfo at the new primary (ALTER
 *		  SYSTEM and a reload: the startup process restarts the WAL
 *		  receiver, recovery_target_timeline = 'latest' follows the new
 *		  timeline), streaming through its own slot under its own name;
 *		- a new primary takes over: the registry learns the roles and the
 *		  term, synchronous_standby_names is rebuilt from the stored policy
 *		  with the remaining nodes (the old primary included), and every
 *		  other node gets a slot;
 *		- a primary renews, loses and regains its commit lease.
 *
 * The journal of events lives here too: every decision goes to the server
 * log at once and, on a primary, into rk_events.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "postmaster/bgwriter.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "core/conninfo.h"
#include "core/local.h"
#include "core/upstream.h"
#include "worker/fsm.h"

/* Where this node's primary_conninfo points: the registry index, or -1. */
int
rk_upstream_index(RkView *v)
{
	char	   *host;
	int			port;

	if (!rk_conninfo_target(GetConfigOption("primary_conninfo", true, false), &host, &port))
		return -1;
	for (int i = 0; i < v->npeers; i++)
		if (strcmp(v->peers[i].host, host) == 0 && v->peers[i].port == port)
			return i;
	return -1;
}

/*
 * Point this standby at `primary_idx`: primary_conninfo and
 * primary_slot_name with ALTER SYSTEM, then a reload.  The startup process
 * notices and restarts the WAL receiver; no server restart.
 */
bool
rk_repoint_to(RkView *v, int primary_idx)
{
	RkPeer	   *to = &v->peers[primary_idx];
	bool		started = rk_xact_begin();

	rk_point_upstream(to->host, to->port, v->self, v->repl_role);
	rk_xact_end(started);
	rk_journal(v, "repoint", v->self, "streams from %s (%s:%d) through slot %s",
			   to->name, to->host, to->port, v->self);
	return true;
}

/*
 * Is this standby on the timeline of its own unelected promotion?  Then it
 * follows nobody until it is rewound: another node's promotion may have
 * given its own timeline the same number, and streaming it would append
 * that node's WAL to this one's.
 */
bool
rk_on_own_unelected_timeline(RkView *v)
{
	TimeLineID	replay_tli;

	(void) GetXLogReplayRecPtr(&replay_tli);
	return v->st.unelected_tli != 0 && replay_tli == v->st.unelected_tli;
}

/* (any standby state) --NEW_PRIMARY--> FOLLOWING */
RkEvent
rk_act_follow(RkView *v)
{
	if (v->primary_idx >= 0 && !rk_on_own_unelected_timeline(v))
		rk_repoint_to(v, v->primary_idx);
	return RK_EV_NONE;
}

/* FOLLOWING --PRIMARY_SILENT--> SUSPECTING */
RkEvent
rk_act_suspect(RkView *v)
{
	snprintf(v->why, sizeof(v->why), "%s silent for %ld ms",
			 v->primary_idx >= 0 ? v->peers[v->primary_idx].name : "the primary", v->silence_ms);
	return RK_EV_NONE;
}

/*
 * Make sure every other registered node has a usable physical slot here.
 * Works on a standby too (a promoting one creates them before pg_promote,
 * so that they reserve WAL from before the switch).  On the primary it
 * runs every round: a slot that went missing is recreated, and a slot that
 * lost its WAL (max_slot_wal_keep_size) is recreated and reported, since
 * its standby can only come back as a fresh clone.
 */
void
rk_create_peer_slots(RkView *v)
{
	Oid			types[1] = {TEXTOID};
	bool		started = rk_xact_begin();

	SPI_connect();
	for (int i = 0; i < v->npeers; i++)
	{
		Datum		vals[1];
		bool		missing;
		bool		lost = false;

		if (v->peers[i].is_self)
			continue;
		vals[0] = CStringGetTextDatum(v->peers[i].name);

		/*
		 * Still registered?  On the primary, lock the row: an
		 * rk_remove_standby() in flight drops the slot before it commits,
		 * and must not see it come back.
		 */
		if (SPI_execute_with_args(psprintf("SELECT 1 FROM %s WHERE node_name = $1%s", rk_table("rk_nodes"),
										   RecoveryInProgress() ? "" : " FOR SHARE"),
								  1, types, vals, NULL, false, 1) != SPI_OK_SELECT || SPI_processed == 0)
			continue;
		if (SPI_execute_with_args("SELECT coalesce(wal_status, '') = 'lost' AND NOT active "
								  "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
								  1, types, vals, NULL, true, 1) != SPI_OK_SELECT)
			continue;
		missing = SPI_processed == 0;
		if (!missing)
		{
			bool		isnull;

			lost = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		if (lost)
		{
			SPI_execute_with_args("SELECT pg_catalog.pg_drop_replication_slot($1)",
								  1, types, vals, NULL, false, 0);
			rk_journal(v, "slot_lost", v->peers[i].name,
					   "its slot lost WAL beyond max_slot_wal_keep_size and was recreated; "
					   "%s cannot catch up and must be cloned again: %s", v->peers[i].name,
					   rk_clone_command(NULL, v->peers[i].name, v->peers[v->self_idx].host,
										v->peers[v->self_idx].port, v->repl_role));
		}
		if (missing || lost)
		{
			SPI_execute_with_args("SELECT pg_catalog.pg_create_physical_replication_slot($1, true)",
								  1, types, vals, NULL, false, 0);
			if (!lost)
				rk_journal(v, "slot_created", v->peers[i].name, "replication slot %s created on %s",
						   v->peers[i].name, v->self);
		}
	}
	SPI_finish();
	rk_xact_end(started);
}

/*
 * Drop a slot, unless a WAL receiver took it since we looked (a voter that
 * re-points at a candidate): that error must not end the worker, so the
 * drop runs in a subtransaction of its own, as PL/pgSQL's EXCEPTION does.
 */
static bool
drop_slot_if_idle(Oid *types, Datum *vals)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		dropped = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		SPI_execute_with_args("SELECT pg_catalog.pg_drop_replication_slot($1)",
							  1, types, vals, NULL, false, 0);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		dropped = false;
	}
	PG_END_TRY();
	return dropped;
}

/*
 * A standby that follows a live primary needs no slots of its own: the ones
 * it made to be promoted (or kept from its own time as the primary) would
 * hold its WAL back until max_slot_wal_keep_size, and later be reported as
 * lost.  Drop the idle ones named after registered nodes; a candidate makes
 * them again before it asks for votes.
 */
void
rk_drop_idle_peer_slots(RkView *v)
{
	bool		started = rk_xact_begin();
	uint64		n;

	SPI_connect();
	if (SPI_execute(psprintf("SELECT s.slot_name::text FROM pg_catalog.pg_replication_slots s "
							 "JOIN %s n ON n.node_name = s.slot_name::text "
							 "WHERE s.slot_type = 'physical' AND NOT s.active AND s.temporary IS FALSE",
							 rk_table("rk_nodes")), true, 0) == SPI_OK_SELECT &&
		(n = SPI_processed) > 0)
	{
		SPITupleTable *found = SPI_tuptable;

		for (uint64 i = 0; i < n; i++)
		{
			char	   *name = SPI_getvalue(found->vals[i], found->tupdesc, 1);
			Oid			types[1] = {TEXTOID};
			Datum		vals[1] = {CStringGetTextDatum(name)};

			if (strcmp(name, v->self) == 0)
				continue;
			if (drop_slot_if_idle(types, vals))
				rk_journal(v, "slot_dropped", name, "idle replication slot %s dropped on standby %s", name, v->self);
		}
	}
	SPI_finish();
	rk_xact_end(started);
}

/*
 * A deposed primary, and one whose lease ran out, looks read-only to new
 * sessions (default_transaction_read_only is reported to libpq), so that
 * clients with target_session_attrs=read-write pass it by and find the
 * primary the majority has or elects.  The commit guard, not this, is what
 * stops commits; the kit's own functions still write here
 * (rk_commit_locally), and a client that turns the setting off meets the
 * guard.  The lease coming back turns it off again (rk_grant_lease).
 */
static void
set_read_only(bool on)
{
	bool		started = rk_xact_begin();
	const char *cur = rk_file_setting_value("default_transaction_read_only");
	bool		change = (cur != NULL && strcmp(cur, "on") == 0) != on;

	if (change)
		rk_alter_system("default_transaction_read_only", on ? "on" : NULL);
	rk_xact_end(started);
	if (change)
		rk_reload_config();
}

/* Move the end of the lease out to `from` + the effective fence timeout. */
void
rk_extend_lease(int64 from_ms)
{
	int64		until = from_ms + rk_effective_fence_ms();

	if ((int64) pg_atomic_read_u64(&rk_shared->lease_until) < until)
		pg_atomic_write_u64(&rk_shared->lease_until, (uint64) until);
}

/*
 * Bring the end of the lease in to `from` + the effective fence timeout,
 * when a shorter bound became known since it was granted (another node's
 * smaller failover_timeout).  The last renewal was no later than `from`.
 */
void
rk_cap_lease(int64 from_ms)
{
	int64		until = from_ms + rk_effective_fence_ms();

	if ((int64) pg_atomic_read_u64(&rk_shared->lease_until) > until)
		pg_atomic_write_u64(&rk_shared->lease_until, (uint64) until);
}

/* Allow commits until `from` + the effective fence timeout. */
void
rk_grant_lease(RkView *v, int64 from_ms)
{
	pg_atomic_write_u32(&rk_shared->guard_enforced, v->members >= 2 ? 1 : 0);
	rk_extend_lease(from_ms);
	if (pg_atomic_read_u32(&rk_shared->fenced) == 0)
		set_read_only(false);
}

/* IDLE --IS_PRIMARY--> PRIMARY: a primary (re)started; the lease comes with a majority. */
RkEvent
rk_act_start_primary(RkView *v)
{
	bool		started = rk_xact_begin();
	char	   *term = rk_query_value(psprintf("SELECT term FROM %s", rk_table("rk_cluster")),
									  0, NULL, NULL);
	bool		unfinished = !v->peers[v->self_idx].registry_primary ||
		(term != NULL && strtoull(term, NULL, 10) < v->st.term);

	rk_xact_end(started);

	/*
	 * Promoted, but the take-over did not finish (the worker restarted in
	 * between): the registry still names another primary or an older term.
	 */
	if (unfinished)
		return RK_EV_TAKE_OVER;
	/* Probe at once: the lease comes with the first majority. */
	SetLatch(MyLatch);
	if (v->members < 2)
		rk_grant_lease(v, rk_monotonic_ms());
	return RK_EV_NONE;
}

/*
 * This worker saw the node in recovery, and now it is out of it on a newer
 * timeline without an election won: that timeline is its own unelected
 * promotion's.  Remember it and where it forked off (on disk, before
 * anyone is told a position): in the winner rule the node counts at the
 * fork from now on (rk_election_position).  Not known after a restart of
 * the worker in between: then the node keeps counting in full, which only
 * ever makes it wait for a rewind.
 */
static void
note_unelected_timeline(RkView *v)
{
	TimeLineID	tli = rk_current_timeline();
	TimeLineID	parent;
	XLogRecPtr	fork;
	RkNodeState st;

	/*
	 * A timeline of this worker's own pg_promote() is an election's, even if
	 * a newer term reached the node before it took over: it may have
	 * acknowledged commits there, and must count in full.
	 */
	if (v->ctx->promoted_here || v->ctx->standby_tli == 0 || tli <= v->ctx->standby_tli)
		return;
	fork = rk_timeline_fork(tli, &parent);
	if (XLogRecPtrIsInvalid(fork) || parent != v->ctx->standby_tli)
		return;
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	st = rk_shared->state;
	st.unelected_tli = tli;
	st.unelected_fork = fork;
	rk_state_save_locked(&st);
	LWLockRelease(rk_shared->lock);
	rk_journal(v, "unelected", v->self, "promoted without an election onto timeline %u (forked off %u at %X/%X): counts at the fork in elections",
			   tli, parent, LSN_FORMAT_ARGS(fork));
}

/*
 * IDLE, FOLLOWING, ... --NOT_ELECTED--> FENCED: out of recovery without
 * having won the current term.  Nothing is acknowledged here: the node is
 * fenced at once and looks read-only; it does not raise the term, so it
 * deposes nobody, and the fence makes it rejoin as a standby of the
 * primary it knows (FENCED --DEPOSED--> REJOINING).
 */
RkEvent
rk_act_fence_unelected(RkView *v)
{
	pg_atomic_write_u32(&rk_shared->guard_enforced, 1);
	pg_atomic_write_u32(&rk_shared->fenced, 1);
	set_read_only(true);
	note_unelected_timeline(v);
	snprintf(v->why, sizeof(v->why), "term " UINT64_FORMAT " was won by %s", v->st.term,
			 v->st.primary_name[0] ? v->st.primary_name : "another node (or nobody yet)");
	rk_set_readiness("fenced: this node is out of recovery but did not win term " UINT64_FORMAT
					 "; it rejoins as a standby", v->st.term);
	return RK_EV_NONE;
}

/* PRIMARY --MAJORITY_OK--> PRIMARY */
RkEvent
rk_act_renew_lease(RkView *v)
{
	rk_grant_lease(v, v->mono);
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->last_seen_primary = v->now;
	rk_shared->last_seen_primary_ms = v->mono;
	LWLockRelease(rk_shared->lock);
	return RK_EV_NONE;
}

/* PRIMARY --MAJORITY_LOST or DEPOSED--> FENCED */
RkEvent
rk_act_fence(RkView *v)
{
	pg_atomic_write_u32(&rk_shared->guard_enforced, 1);
	if (v->deposed)
	{
		/* Another node is the primary: clients must stop coming here. */
		pg_atomic_write_u32(&rk_shared->fenced, 1);
		set_read_only(true);
	}
	else
	{
		/*
		 * The lease ran out: a new primary may be elected from now on.  The
		 * standbys stop getting WAL from here, so that none of them
		 * acknowledges a commit that waited through the election (the
		 * commit guard withholds such acknowledgements too).  They
		 * reconnect by themselves; a handover's target is spared.
		 */
		char		keep[NAMEDATALEN];
		bool		started;

		LWLockAcquire(rk_shared->lock, LW_SHARED);
		strlcpy(keep, rk_shared->fence_target, sizeof(keep));
		LWLockRelease(rk_shared->lock);
		started = rk_xact_begin();
		rk_cut_walsenders(keep[0] ? keep : NULL, true, 1);
		rk_xact_end(started);
		set_read_only(true);
	}
	rk_set_readiness("fenced: %s", v->why[0] ? v->why : "no majority");
	rk_hook_event(v, "fenced", "fenced",
				  v->deposed && strcmp(v->st.primary_name, v->self) != 0 ? v->st.primary_name : "");
	return v->deposed ? RK_EV_DEPOSED : RK_EV_NONE;
}

/* FENCED --MAJORITY_OK--> PRIMARY (lease lost to a partition that healed) */
RkEvent
rk_act_unfence(RkView *v)
{
	if (pg_atomic_read_u32(&rk_shared->fenced))
		return RK_EV_NONE;
	rk_grant_lease(v, v->mono);
	rk_hook_event(v, "unfenced", "primary", v->self);
	return RK_EV_NONE;
}

/*
 * An operator forced this promotion without a majority: the nodes that did
 * not answer leave the quorum until they stream again (mark_joined counts
 * them back in), or this primary could never hold a lease.  Runs inside
 * the take-over's SPI connection.
 */
static void
shrink_quorum(RkView *v)
{
	Oid			types[1] = {TEXTOID};

	for (int i = 0; i < v->npeers; i++)
	{
		Datum		name[1];

		if (v->peers[i].is_self || v->peers[i].reachable)
			continue;
		name[0] = CStringGetTextDatum(v->peers[i].name);
		SPI_execute_with_args(psprintf("UPDATE %s SET joined_at = NULL WHERE node_name = $1",
									   rk_table("rk_nodes")), 1, types, name, NULL, false, 0);
		v->peers[i].joined = false;
		v->members--;
		rk_journal(v, "quorum_shrunk", v->peers[i].name,
				   "left the quorum after a forced failover; counts again once it streams");
	}
	v->majority = v->members / 2 + 1;
}

/*
 * PROMOTING --IS_PRIMARY--> PRIMARY: the registry learns the new roles and
 * term, the stored synchronous policy is applied to the remaining nodes,
 * every other node gets a slot, and the lease starts from the votes.
 */
RkEvent
rk_act_take_over(RkView *v)
{
	RkNodeState st;
	char	   *names;
	bool		started;
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		vals[2];

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	st = rk_shared->state;
	if (!rk_state_elected(&st))
	{
		/* Only IS_PRIMARY leads here, and only a winner gets it; never take over otherwise. */
		pg_atomic_write_u32(&rk_shared->fenced, 1);
		LWLockRelease(rk_shared->lock);
		elog(ERROR, RK_LOG_PREFIX "take-over in term " UINT64_FORMAT " without having won it", st.term);
	}
	strlcpy(st.primary_name, v->self, NAMEDATALEN);
	strlcpy(st.role, "primary", sizeof(st.role));
	rk_state_save_locked(&st);
	v->st = st;
	rk_shared->readiness[0] = '\0';
	/* Under the lock: a newer term learned meanwhile fences again, after this. */
	pg_atomic_write_u32(&rk_shared->fenced, 0);
	LWLockRelease(rk_shared->lock);

	rk_grant_lease(v, rk_election_lease_start(v->ctx, st.term));

	started = rk_xact_begin();
	vals[0] = CStringGetTextDatum(v->self);
	vals[1] = Int64GetDatum((int64) st.term);
	SPI_connect();
	SPI_execute_with_args(psprintf("UPDATE %s SET role = 'standby' WHERE role = 'primary' AND node_name <> $1",
								   rk_table("rk_nodes")), 1, types, vals, NULL, false, 0);
	SPI_execute_with_args(psprintf("UPDATE %s SET role = 'primary' WHERE node_name = $1",
								   rk_table("rk_nodes")), 1, types, vals, NULL, false, 0);
	SPI_execute_with_args(psprintf("UPDATE %s SET term = $2 WHERE $1 IS NOT NULL",
								   rk_table("rk_cluster")), 2, types, vals, NULL, false, 0);

	if (v->ctx->won_forced && v->ctx->won_term == st.term)
		shrink_quorum(v);
	SPI_finish();
	CommandCounterIncrement();

	names = pstrdup(rk_apply_sync_names());
	rk_create_peer_slots(v);
	rk_xact_end(started);

	/*
	 * A checkpoint now, so that pg_control shows the new timeline: pg_rewind
	 * on the old primary reads it from here.
	 */
	RequestCheckpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE | CHECKPOINT_WAIT);
	rk_journal(v, "take_over", v->self, "primary of term " UINT64_FORMAT "; synchronous_standby_names = '%s'",
			   st.term, names);
	snprintf(v->why, sizeof(v->why), "synchronous_standby_names = '%s'", names);
	rk_hook_event(v, "promoted", "primary", v->self);

	/* Tell the other nodes now rather than at the next round. */
	rk_wake_worker();
	return RK_EV_NONE;
}
