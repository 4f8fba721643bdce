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
#include "utils/timestamp.h"

#include "fsm.h"

/* Events waiting to be written to rk_events once this node is primary. */
#define JOURNAL_SIZE 64
typedef struct JournalEntry
{
	TimestampTz at;
	uint64		term;
	char		kind[32];
	char		node[NAMEDATALEN];
	char		detail[512];
} JournalEntry;

static JournalEntry journal[JOURNAL_SIZE];
static int	journal_len = 0;

void
rk_journal(RkView *v, const char *kind, const char *node, const char *fmt,...)
{
	va_list		ap;
	JournalEntry *e;

	if (journal_len == JOURNAL_SIZE)
	{
		memmove(&journal[0], &journal[1], sizeof(JournalEntry) * (JOURNAL_SIZE - 1));
		journal_len--;
	}
	e = &journal[journal_len++];
	e->at = GetCurrentTimestamp();
	e->term = v->st.term;
	strlcpy(e->kind, kind, sizeof(e->kind));
	strlcpy(e->node, node ? node : v->self, sizeof(e->node));
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);

	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "%s %s (term " UINT64_FORMAT "): %s", e->kind, e->node, e->term, e->detail)));
}

/* Write the journal into rk_events; only a primary can. */
void
rk_journal_flush(void)
{
	Oid			types[5] = {TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTOID};

	if (journal_len == 0 || RecoveryInProgress() || pg_atomic_read_u32(&rk_shared->fenced))
		return;
	rk_commit_locally();
	SPI_connect();
	for (int i = 0; i < journal_len; i++)
	{
		Datum		vals[5];

		vals[0] = TimestampTzGetDatum(journal[i].at);
		vals[1] = Int64GetDatum((int64) journal[i].term);
		vals[2] = CStringGetTextDatum(journal[i].kind);
		vals[3] = CStringGetTextDatum(journal[i].node);
		vals[4] = CStringGetTextDatum(journal[i].detail);
		SPI_execute_with_args(psprintf("INSERT INTO %s (at, term, kind, node_name, detail) VALUES ($1, $2, $3, $4, $5)",
									   rk_table("rk_events")),
							  5, types, vals, NULL, false, 0);
	}
	SPI_finish();
	journal_len = 0;
}

/*
 * What rk_status() shows on this node's own row: why an automatic failover
 * would not happen now, or what this node is waiting for.
 */
void
rk_set_readiness(const char *fmt,...)
{
	va_list		ap;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	va_start(ap, fmt);
	vsnprintf(rk_shared->readiness, RK_REASON_LEN, fmt, ap);
	va_end(ap);
	LWLockRelease(rk_shared->lock);
}

RkEvent
rk_act_none(RkView *v)
{
	return RK_NUM_EVENTS;
}

/* Where this node's primary_conninfo points: the registry index, or -1. */
int
rk_upstream_index(RkView *v)
{
	const char *conninfo = GetConfigOption("primary_conninfo", true, false);
	PQconninfoOption *opts;
	char	   *host = NULL;
	char	   *port = NULL;
	int			found = -1;

	if (conninfo == NULL || conninfo[0] == '\0' || (opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return -1;
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (strcmp(o->keyword, "host") == 0 && o->val)
			host = pstrdup(o->val);
		if (strcmp(o->keyword, "hostaddr") == 0 && o->val && host == NULL)
			host = pstrdup(o->val);
		if (strcmp(o->keyword, "port") == 0 && o->val)
			port = pstrdup(o->val);
	}
	PQconninfoFree(opts);
	for (int i = 0; i < v->npeers && host; i++)
		if (strcmp(v->peers[i].host, host) == 0 && v->peers[i].port == (port ? atoi(port) : 5432))
			found = i;
	return found;
}

static void
append_conninfo_value(StringInfo buf, const char *key, const char *val)
{
	appendStringInfo(buf, "%s%s='", buf->len ? " " : "", key);
	for (const char *p = val; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/*
 * primary_conninfo for streaming from `to`: the current one with host and
 * port replaced (so a password, passfile or SSL settings stay), or a new
 * one with the kit's role and password file.
 */
static char *
conninfo_for(RkView *v, RkPeer *to)
{
	const char *cur = GetConfigOption("primary_conninfo", true, false);
	PQconninfoOption *opts = (cur && cur[0]) ? PQconninfoParse(cur, NULL) : NULL;
	StringInfoData buf;
	bool		have_user = false;
	bool		have_secret = false;

	initStringInfo(&buf);
	append_conninfo_value(&buf, "host", to->host);
	append_conninfo_value(&buf, "port", psprintf("%d", to->port));
	append_conninfo_value(&buf, "application_name", v->self);
	if (opts)
	{
		for (PQconninfoOption *o = opts; o->keyword; o++)
		{
			if (o->val == NULL || o->val[0] == '\0' ||
				strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
				strcmp(o->keyword, "port") == 0 || strcmp(o->keyword, "application_name") == 0)
				continue;
			/* Only what was set explicitly: defaults filled in by libpq are noise. */
			if (strstr(cur, o->keyword) == NULL)
				continue;
			if (strcmp(o->keyword, "user") == 0)
				have_user = true;
			if (strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "passfile") == 0)
				have_secret = true;
			append_conninfo_value(&buf, o->keyword, o->val);
		}
		PQconninfoFree(opts);
	}
	if (!have_user)
		append_conninfo_value(&buf, "user", v->repl_role);
	if (!have_secret)
		append_conninfo_value(&buf, "passfile", psprintf("%s/%s", DataDir, RK_PASS_FILE));
	return buf.data;
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
	char	   *conninfo = conninfo_for(v, to);
	const char *slot = GetConfigOption("primary_slot_name", true, false);

	rk_alter_system("primary_conninfo", conninfo);
	if (slot == NULL || strcmp(slot, v->self) != 0)
		rk_alter_system("primary_slot_name", v->self);
	rk_reload_config();
	rk_journal(v, "repoint", v->self, "streams from %s (%s:%d) through slot %s",
			   to->name, to->host, to->port, v->self);
	return true;
}

/* (any standby state) --NEW_PRIMARY--> FOLLOWING */
RkEvent
rk_act_follow(RkView *v)
{
	if (v->primary_idx >= 0)
		rk_repoint_to(v, v->primary_idx);
	return RK_NUM_EVENTS;
}

/* FOLLOWING --PRIMARY_SILENT--> SUSPECTING */
RkEvent
rk_act_suspect(RkView *v)
{
	snprintf(v->why, sizeof(v->why), "%s silent for %ld ms",
			 v->primary_idx >= 0 ? v->peers[v->primary_idx].name : "the primary", v->silence_ms);
	return RK_NUM_EVENTS;
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
}

/*
 * A deposed primary also looks read-only to new sessions, so that clients
 * with target_session_attrs=read-write pass it by and find the new primary.
 * (The commit guard, not this, is what stops commits.)  A primary that only
 * lost its lease does not: there may be no other primary to go to, and the
 * kit's own functions must keep working there.
 */
static void
set_read_only(bool on)
{
	const char *cur = rk_file_setting_value("default_transaction_read_only");
	bool		is_on = cur != NULL && strcmp(cur, "on") == 0;

	if (on == is_on)
		return;
	rk_alter_system("default_transaction_read_only", on ? "on" : NULL);
	rk_reload_config();
}

/* Move the end of the lease out to `from` + the effective fence timeout. */
void
rk_extend_lease(TimestampTz from)
{
	TimestampTz until = TimestampTzPlusMilliseconds(from, rk_effective_fence_ms());

	if ((TimestampTz) pg_atomic_read_u64(&rk_shared->lease_until) < until)
		pg_atomic_write_u64(&rk_shared->lease_until, (uint64) until);
}

/* Allow commits until `from` + the effective fence timeout. */
void
rk_grant_lease(RkView *v, TimestampTz from)
{
	pg_atomic_write_u32(&rk_shared->guard_enforced, v->members >= 2 ? 1 : 0);
	rk_extend_lease(from);
	if (pg_atomic_read_u32(&rk_shared->fenced) == 0)
		set_read_only(false);
}

/* IDLE --IS_PRIMARY--> PRIMARY: a primary (re)started; the lease comes with a majority. */
RkEvent
rk_act_start_primary(RkView *v)
{
	char	   *term;

	/*
	 * Promoted, but the take-over did not finish (the worker restarted in
	 * between): the registry still names another primary or an older term.
	 */
	term = rk_query_value(psprintf("SELECT term FROM %s", rk_table("rk_cluster")), 0, NULL, NULL);
	if (!v->peers[v->self_idx].registry_primary ||
		(term != NULL && strtoull(term, NULL, 10) < v->st.term))
		return rk_act_take_over(v);
	if (v->members < 2)
		rk_grant_lease(v, GetCurrentTimestamp());
	return RK_NUM_EVENTS;
}

/* PRIMARY --MAJORITY_OK--> PRIMARY */
RkEvent
rk_act_renew_lease(RkView *v)
{
	rk_grant_lease(v, v->now);
	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_shared->last_seen_primary = v->now;
	LWLockRelease(rk_shared->lock);
	return RK_NUM_EVENTS;
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
	rk_set_readiness("fenced: %s", v->why[0] ? v->why : "no majority");
	return v->deposed ? RK_EV_DEPOSED : RK_NUM_EVENTS;
}

/* FENCED --MAJORITY_OK--> PRIMARY (lease lost to a partition that healed) */
RkEvent
rk_act_unfence(RkView *v)
{
	if (pg_atomic_read_u32(&rk_shared->fenced))
		return RK_NUM_EVENTS;
	rk_grant_lease(v, v->now);
	return RK_NUM_EVENTS;
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
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		vals[2];

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	st = rk_shared->state;
	if (st.voted_for[0] == '\0' || strcmp(st.voted_for, v->self) != 0 || st.voted_term != st.term)
	{
		/* Left recovery without our election (pg_promote by hand): a new term still. */
		st.term++;
		st.voted_term = st.term;
		strlcpy(st.voted_for, v->self, NAMEDATALEN);
	}
	strlcpy(st.primary_name, v->self, NAMEDATALEN);
	strlcpy(st.role, "primary", sizeof(st.role));
	rk_state_save_locked(&st);
	v->st = st;
	rk_shared->readiness[0] = '\0';
	LWLockRelease(rk_shared->lock);

	pg_atomic_write_u32(&rk_shared->fenced, 0);
	rk_grant_lease(v, rk_election_lease_start(st.term));

	rk_commit_locally();
	vals[0] = CStringGetTextDatum(v->self);
	vals[1] = Int64GetDatum((int64) st.term);
	SPI_connect();
	SPI_execute_with_args(psprintf("UPDATE %s SET role = 'standby' WHERE role = 'primary' AND node_name <> $1",
								   rk_table("rk_nodes")), 1, types, vals, NULL, false, 0);
	SPI_execute_with_args(psprintf("UPDATE %s SET role = 'primary' WHERE node_name = $1",
								   rk_table("rk_nodes")), 1, types, vals, NULL, false, 0);
	SPI_execute_with_args(psprintf("UPDATE %s SET term = $2 WHERE $1 IS NOT NULL",
								   rk_table("rk_cluster")), 2, types, vals, NULL, false, 0);

	/*
	 * An operator forced this promotion without a majority: the nodes that
	 * did not answer leave the quorum until they stream again (mark_joined
	 * counts them back in), or this primary could never hold a lease.
	 */
	if (rk_election_forced(st.term))
	{
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
	SPI_finish();
	CommandCounterIncrement();

	names = rk_apply_sync_names();
	rk_create_peer_slots(v);

	/*
	 * A checkpoint now, so that pg_control shows the new timeline: pg_rewind
	 * on the old primary reads it from here.
	 */
	RequestCheckpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE | CHECKPOINT_WAIT);
	rk_journal(v, "take_over", v->self, "primary of term " UINT64_FORMAT "; synchronous_standby_names = '%s'",
			   st.term, names);
	snprintf(v->why, sizeof(v->why), "synchronous_standby_names = '%s'", names);

	/* Tell the other nodes now rather than at the next round. */
	rk_wake_worker();
	return RK_NUM_EVENTS;
}
