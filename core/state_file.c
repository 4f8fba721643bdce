/*-------------------------------------------------------------------------
 *
 * state_file.c
 *		The node's durable state in PGDATA/replication_kit.state: its name,
 *		the highest term it has seen, its vote in that term and its last
 *		role.  A vote must survive a crash, or a node could vote twice in
 *		one term; so every change is written to a temporary file, fsync'ed
 *		and renamed into place before anyone is told about it.
 *
 * The file is plain "key = value" text so that a person can read it.  It
 * is copied along by pg_basebackup; a clone corrects the name it inherits
 * as soon as its worker starts (see rk_self_name()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "lib/stringinfo.h"
#include "storage/fd.h"
#include "storage/latch.h"

#include "core/durable.h"
#include "core/node_state.h"
#include "core/shmem.h"

/* Read the state file; false (state zeroed) if there is none. */
bool
rk_state_read(RkNodeState *state)
{
	FILE	   *f;
	char		line[512];
	bool		has_won_term = false;

	memset(state, 0, sizeof(RkNodeState));
	f = AllocateFile(RK_STATE_FILE, "r");
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg(RK_LOG_PREFIX "could not read \"%s\": %m", RK_STATE_FILE)));
		return false;
	}
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char		key[64];
		char		value[256];

		if (line[0] == '#')
			continue;
		value[0] = '\0';
		if (sscanf(line, "%63s = %255s", key, value) < 1)
			continue;
		if (strcmp(key, "node_name") == 0)
			strlcpy(state->node_name, value, NAMEDATALEN);
		else if (strcmp(key, "term") == 0)
			state->term = strtoull(value, NULL, 10);
		else if (strcmp(key, "voted_for") == 0)
			strlcpy(state->voted_for, value, NAMEDATALEN);
		else if (strcmp(key, "voted_term") == 0)
			state->voted_term = strtoull(value, NULL, 10);
		else if (strcmp(key, "won_term") == 0)
		{
			state->won_term = strtoull(value, NULL, 10);
			has_won_term = true;
		}
		else if (strcmp(key, "role") == 0)
			strlcpy(state->role, value, sizeof(state->role));
		else if (strcmp(key, "primary_name") == 0)
			strlcpy(state->primary_name, value, NAMEDATALEN);
		else if (strcmp(key, "members") == 0)
			state->members = atoi(value);
		else if (strcmp(key, "rejoin_pending") == 0)
			state->rejoin_pending = strcmp(value, "true") == 0;
		else if (strcmp(key, "rejoin_from_tli") == 0)
			state->rejoin_from_tli = (TimeLineID) strtoul(value, NULL, 10);
		else if (strcmp(key, "rewound_term") == 0)
			state->rewound_term = strtoull(value, NULL, 10);
		else if (strcmp(key, "repl_role") == 0)
			strlcpy(state->repl_role, value, NAMEDATALEN);
		else if (strcmp(key, "schema") == 0)
			strlcpy(state->schema, value, NAMEDATALEN);
		else if (strcmp(key, "resumed_pause") == 0)
			state->resumed_pause = strtoull(value, NULL, 10);
		else if (strcmp(key, "unelected") == 0)
		{
			unsigned int tli,
						hi,
						lo;

			if (sscanf(line, "unelected = %u %X/%X", &tli, &hi, &lo) == 3)
			{
				state->unelected_tli = (TimeLineID) tli;
				state->unelected_fork = ((uint64) hi << 32) | lo;
			}
		}
		else if (strcmp(key, "peer") == 0 && state->npeers < RK_MAX_NODES)
		{
			char		name[NAMEDATALEN];
			char		host[RK_HOST_LEN];
			int			port;

			if (sscanf(line, "peer = %63s %255s %d", name, host, &port) == 3)
			{
				strlcpy(state->peer_name[state->npeers], name, NAMEDATALEN);
				strlcpy(state->peer_host[state->npeers], host, RK_HOST_LEN);
				state->peer_port[state->npeers] = port;
				state->npeers++;
			}
		}
	}
	FreeFile(f);

	/*
	 * A file written before won_term existed: a node that names itself the
	 * primary of its term was, so it keeps that standing.
	 */
	if (!has_won_term && strcmp(state->role, "primary") == 0 &&
		strcmp(state->primary_name, state->node_name) == 0)
		state->won_term = state->term;
	return true;
}

/*
 * May this node act as the primary?  Only in a term it won (or, for the
 * first primary, founded): once it has seen a newer term, or left recovery
 * without winning one, it acknowledges nothing until it is a standby again.
 */
bool
rk_state_elected(const RkNodeState *st)
{
	return st->won_term > 0 && st->won_term == st->term;
}

/*
 * Write the state durably.  The caller holds rk_shared->lock exclusively
 * (or is the postmaster, alone), so writers never interleave.
 */
/*
 * The file is read back word by word: a value with white space or a
 * control character in it would be read as something else (a newline in a
 * name would add a line of its own).  Refuse it, whoever asked.
 */
static void
check_value(const char *key, const char *value)
{
	for (const char *p = value; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == 0x7f || *p == '#')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("refusing to write %s to \"%s\": the value contains white space or a control character",
							key, RK_STATE_FILE),
					 errdetail("Names and hosts in the node state are single words.")));
}

void
rk_state_write(const RkNodeState *state)
{
	StringInfoData buf;

	check_value("node_name", state->node_name);
	check_value("voted_for", state->voted_for);
	check_value("role", state->role);
	check_value("primary_name", state->primary_name);
	check_value("repl_role", state->repl_role);
	check_value("schema", state->schema);
	for (int i = 0; i < state->npeers; i++)
	{
		check_value("peer name", state->peer_name[i]);
		check_value("peer host", state->peer_host[i]);
	}

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "# replication_kit node state: written by replication_kit, do not edit\n"
					 "node_name = %s\n"
					 "term = " UINT64_FORMAT "\n"
					 "voted_for = %s\n"
					 "voted_term = " UINT64_FORMAT "\n"
					 "won_term = " UINT64_FORMAT "\n"
					 "role = %s\n"
					 "primary_name = %s\n"
					 "members = %d\n"
					 "rejoin_pending = %s\n"
					 "rewound_term = " UINT64_FORMAT "\n"
					 "repl_role = %s\n"
					 "schema = %s\n",
					 state->node_name, state->term, state->voted_for, state->voted_term,
					 state->won_term, state->role, state->primary_name, state->members,
					 state->rejoin_pending ? "true" : "false", state->rewound_term, state->repl_role,
					 state->schema);
	if (state->unelected_tli != 0)
		appendStringInfo(&buf, "unelected = %u %X/%X\n",
						 state->unelected_tli, LSN_FORMAT_ARGS(state->unelected_fork));
	if (state->rejoin_pending && state->rejoin_from_tli != 0)
		appendStringInfo(&buf, "rejoin_from_tli = %u\n", state->rejoin_from_tli);
	if (state->resumed_pause != 0)
		appendStringInfo(&buf, "resumed_pause = " UINT64_FORMAT "\n", state->resumed_pause);
	for (int i = 0; i < state->npeers; i++)
		appendStringInfo(&buf, "peer = %s %s %d\n",
						 state->peer_name[i], state->peer_host[i], state->peer_port[i]);
	rk_durable_write(RK_STATE_FILE, buf.data, buf.len, pg_file_create_mode);
	pfree(buf.data);
}

/*
 * Make `st` the node's state, on disk first and then in shared memory.  The
 * caller holds rk_shared->lock exclusively; an error leaves both as they
 * were (and the lock is released by the error cleanup).
 */
void
rk_state_save_locked(const RkNodeState *st)
{
	if (rk_shared->state_loaded && memcmp(st, &rk_shared->state, sizeof(RkNodeState)) == 0)
		return;

	/*
	 * A primary that learns of a newer term than the one it won was
	 * replaced: whoever restarts it, even without this library preloaded,
	 * it must come back as a standby.  standby.signal goes to disk before
	 * the term does.
	 */
	if (st->won_term > 0 && st->term > st->won_term && !RecoveryInProgress() &&
		access(STANDBY_SIGNAL_FILE, F_OK) != 0)
		rk_durable_write(STANDBY_SIGNAL_FILE, "", 0, pg_file_create_mode);
	rk_state_write(st);
	rk_shared->state = *st;
	rk_shared->state_loaded = true;
	pg_atomic_write_u32(&rk_shared->elected, rk_state_elected(st) ? 1 : 0);
}

/*
 * The end of pause `pause_id` on this node (rk_resume here, or another
 * node's rk_peer_resume): on disk before anything acts on it, then the
 * worker is woken.  Returns whether it was news.
 */
bool
rk_state_note_resumed(uint64 pause_id)
{
	bool		news = false;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_state_load_locked();
	if (rk_shared->state.resumed_pause < pause_id)
	{
		RkNodeState st = rk_shared->state;

		st.resumed_pause = pause_id;
		rk_state_save_locked(&st);
		news = true;
	}
	if (rk_shared->worker_latch)
		SetLatch(rk_shared->worker_latch);
	LWLockRelease(rk_shared->lock);
	return news;
}

/* Load the state file into shared memory once; caller holds the lock exclusively. */
void
rk_state_load_locked(void)
{
	if (!rk_shared->state_loaded)
	{
		(void) rk_state_read(&rk_shared->state);
		rk_shared->state_loaded = true;
		pg_atomic_write_u32(&rk_shared->elected, rk_state_elected(&rk_shared->state) ? 1 : 0);
	}
}

/*
 * Set this node's name and role (either may be NULL to keep it).  A change
 * of name means the file was inherited from another node by a clone: the
 * inherited vote and win are not this node's and are dropped, while the
 * term, which only ever grows, is kept.
 */
void
rk_state_set_identity(const char *node_name, const char *role)
{
	RkNodeState st;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_state_load_locked();
	st = rk_shared->state;
	if (node_name && strcmp(st.node_name, node_name) != 0)
	{
		strlcpy(st.node_name, node_name, NAMEDATALEN);
		st.voted_for[0] = '\0';
		st.voted_term = 0;
		st.won_term = 0;		/* the win was the other node's */
	}
	if (role)
		strlcpy(st.role, role, sizeof(st.role));
	rk_state_save_locked(&st);
	LWLockRelease(rk_shared->lock);
}

/*
 * A primary set up for the first time starts the cluster's first term and
 * is its primary.  Calling it again leaves the term alone.
 */
void
rk_state_start_term(const char *primary_name)
{
	RkNodeState st;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	rk_state_load_locked();
	st = rk_shared->state;
	if (st.term == 0)
	{
		st.term = 1;
		st.won_term = 1;
		strlcpy(st.primary_name, primary_name, NAMEDATALEN);
		if (st.members == 0)
			st.members = 1;
		rk_state_save_locked(&st);
	}
	LWLockRelease(rk_shared->lock);
}
