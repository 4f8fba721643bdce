/*-------------------------------------------------------------------------
 *
 * kit.h
 *		The names and sizes every part of replication_kit shares: the
 *		extension's name, the log prefix, the files it keeps in PGDATA, the
 *		bounds of its arrays, and the fixed durations it waits for.
 *
 * The shared layer (core/) is what both the SQL-callable functions
 * (extension/) and the background worker (worker/) build on; neither of
 * those includes the other's headers.  Every header is included by its
 * path from the source root ("core/kit.h").
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_KIT_H
#define RK_KIT_H

#include "postgres.h"

#include "core/compat.h"

#define RK_EXTENSION_NAME	"replication_kit"
#define RK_LOG_PREFIX		"replication_kit: "

/* Nodes a registry can hold; "a primary with a few standbys". */
#define RK_MAX_NODES		16
#define RK_TERM_MAX			(INT64CONST(1) << 48)	/* terms beyond are refused from peers */
#define RK_HOST_LEN			256
#define RK_REASON_LEN		256
#define RK_RESULT_LEN		1024

/* The range of replication_kit.failover_timeout, which peers' reports must respect too. */
#define RK_FAILOVER_TIMEOUT_MIN_MS	500
#define RK_TIMING_MAX_MS			3600000

/* Files the kit keeps in PGDATA. */
#define RK_STATE_FILE		"replication_kit.state"
#define RK_PASS_FILE		"replication_kit.pgpass"
#define RK_REJOIN_FAILED_FILE "replication_kit.rejoin_failed"
#define RK_REJOIN_RETRY_FILE "replication_kit.rejoin_retry"
#define RK_REJOIN_DONE_FILE "replication_kit.rejoin_done"	/* the helper ran to its end */
#define RK_REJOIN_WORK_SUFFIX ".rk_rejoin"	/* PGDATA + this: rk_rejoin's work directory */

/*
 * The role the nodes call each other as (core/credentials.c): made by
 * rk_create_replicator() with a random secret that no person types.
 */
#define RK_NODE_ROLE		"replication_kit_node"

/*
 * Its secret, as a libpq password file.  The name starts with "pgsql_tmp",
 * which BASE_BACKUP skips wherever it is: a clone made with the streaming
 * password (or anyone's pg_basebackup) never gets it.  Nor is it in any
 * table or in the WAL; a node that lacks it gets it from one that has it
 * (rk_peer_secret).
 */
#define RK_NODE_PASS_FILE	"pgsql_tmp.replication_kit.node_pgpass"

/* Marks the pg_hba.conf lines the kit owns; it never edits any other line. */
#define RK_HBA_MARK			"# replication_kit"

/* libpq's port when a connection string names none. */
#define RK_DEFAULT_PG_PORT	5432

/*
 * Fixed durations (milliseconds).  The tunable ones are settings
 * (core/settings.h); these bound waits that have no reason to be tuned.
 */
#define RK_PROMOTE_WAIT_SECS		60	/* pg_promote(wait => true) */
#define RK_CATCH_UP_MS			30000	/* a forced failover's target takes the fenced primary's WAL */
#define RK_SYNC_APPLY_WAIT_MS	2000	/* a new sync list reaches the checkpointer before promotion */
#define RK_MANUAL_ANSWER_MS		120000	/* a backend waits for its worker's answer */
#define RK_REMOTE_FAILOVER_MS	130000	/* ... and for another node's, a little longer */
#define RK_FENCE_CALL_FACTOR		3	/* rk_peer_fence gets this many probe timeouts */
#define RK_SWITCHOVER_CALLER_MS	60000	/* a deposed primary waits for its rk_switchover() caller */
#define RK_DIVERGED_GRACE_MS		8000	/* a standby stuck behind a newer timeline it may follow */
#define RK_CREDENTIALS_ASK_MS	3000	/* a standby not streaming asks its upstream for the replication password */
#define RK_REJOIN_FOLLOW_GRACE_MS	8000	/* ... and one started as a standby, when its history is unknown */
#define RK_REJOIN_BACKOFF_MAX_MS	60000	/* longest pause between two rewinds that found no source */
#define RK_REJOIN_SETTLE_MS		1500	/* a diverged standby just started stays up this long first */
#define RK_FENCE_AT_START_MS		6000	/* the postmaster asks the other nodes for this long */
#define RK_FENCE_AT_START_TRY_MS	2000	/* ... one node at most this long per attempt */
#define RK_FENCE_AT_START_PAUSE_MS	300 /* ... and pauses between attempts */
#define RK_PEER_CONNECT_TIMEOUT_S	10	/* libpq's backstop; a call's own deadline rules */
#define RK_WALSENDER_CUT_TRIES		100 /* cut other WAL senders: attempts ... */
#define RK_WALSENDER_CUT_PAUSE_MS	20	/* ... this far apart */
#define RK_SLOT_DROP_TRIES		50	/* a slot still in use when it is dropped: attempts ... */
#define RK_SLOT_DROP_PAUSE_MS	100 /* ... this far apart */
#define RK_STREAM_SWITCH_GRACE_MS	100 /* a voter's old WAL receiver may end by itself this long */
#define RK_STREAM_RELOAD_GRACE_MS	50	/* ... and its startup process reread the new setting */
#define RK_STREAM_SWITCH_MAX_MS	1000	/* ... and is waited for at most this long (and a third of probe_timeout) */

#endif							/* RK_KIT_H */
