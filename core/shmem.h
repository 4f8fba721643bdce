/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		The state every process of one server shares: the node's durable
 *		state as loaded, what the worker last saw of the other nodes, the
 *		commit guard's lease, and the mailbox between backends and the
 *		worker.
 *
 * The split of state follows one rule.  Cluster topology (which nodes
 * exist, the synchronous policy, the current term as last committed) lives
 * in the extension's tables, written on the primary and replicated to the
 * standbys.  What one node knows by itself (its name, its vote, what it
 * saw of its peers a moment ago) lives here, and the part of it that must
 * survive a restart in the state file (core/node_state.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_SHMEM_H
#define RK_SHMEM_H

#include <sys/socket.h>

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#include "core/clock.h"
#include "core/kit.h"
#include "core/node_state.h"

/* One registered node as the worker last saw it. */
typedef struct RkPeer
{
	char		name[NAMEDATALEN];
	char		host[RK_HOST_LEN];
	int			port;
	bool		is_self;
	bool		registry_primary;	/* the registry names it the primary */
	bool		sync;			/* member of the synchronous list */
	bool		joined;			/* has streamed once: counts for a majority */
	int			priority;		/* failover priority: ties in WAL; 0: never automatically */

	/* Last probe of this peer (unused for the node itself). */
	bool		reachable;
	TimestampTz last_ok;		/* last successful probe, 0 if never */
	TimestampTz last_attempt;
	bool		in_recovery;
	TimeLineID	timeline;		/* where it counts in the winner rule (rk_election_position) */
	TimeLineID	own_timeline;	/* the timeline it is on; 0 if it did not say */
	XLogRecPtr	lsn;			/* flushed (primary) or received (standby) */
	uint64		term;
	char		primary_name[NAMEDATALEN];	/* whom it follows in `term` */
	char		voted_for[NAMEDATALEN]; /* its vote in `term`, if any */
	long		silence_ms;		/* since its last contact with the primary */
	bool		fenced;
	bool		promoting;		/* in recovery, it names itself: it won its term and is being promoted */
	bool		needs_secret;	/* it lacks the node role's secret */
	int64		failover_timeout_ms;	/* its timing settings, as it last said (0: unknown) */
	int64		lease_ms;
	int			pause_state;	/* the pause as it judges it: 1 paused, 0 not, -1 it did not say */
	uint64		pause_id;		/* the newest pause its registry knows */
	char		error[RK_REASON_LEN];
} RkPeer;

/*
 * Shared memory: one instance per server.  `lock` protects everything but
 * the atomics, which the commit guard reads without a lock on every commit.
 */
/*
 * A node registered by DNS name: the addresses its name had when the worker
 * last resolved it (the node-to-node functions check a caller's address
 * against them without waiting on a resolver).
 */
#define RK_MAX_HOST_ADDRS 4
typedef struct RkResolvedHost
{
	char		host[RK_HOST_LEN];
	int			naddr;
	struct sockaddr_storage addr[RK_MAX_HOST_ADDRS];
	int64		resolved_ms;	/* last good lookup (monotonic) */
	int64		tried_ms;		/* last lookup, good or not */
} RkResolvedHost;

typedef struct RkShared
{
	LWLock	   *lock;

	/* The worker, so that backends can wake it. */
	pid_t		worker_pid;
	Latch	   *worker_latch;

	/* Identity and durable state, mirrored from the state file. */
	bool		state_loaded;
	RkNodeState state;

	/* The registry as the worker last read it. */
	bool		registry_seen;	/* the extension exists and was read */
	int			npeers;
	RkPeer		peers[RK_MAX_NODES];
	char		policy_method[8];	/* FIRST or ANY */
	int			policy_num_sync;
	int			nresolved;		/* its nodes registered by name, resolved */
	RkResolvedHost resolved[RK_MAX_NODES];

	/* What the worker is doing, for rk_status. */
	char		worker_state[32];
	char		readiness[RK_REASON_LEN];
	char		receiver_login[RK_REASON_LEN];	/* why the WAL receiver cannot log in, or "" */

	/* The maintenance pause as this node's worker last judged it (rk_peer_state says it). */
	bool		paused;
	uint64		pause_id;

	/*
	 * Last contact with the primary: a probe that reached it, WAL from it,
	 * or the primary's own call.  Starts at server start, so that a node
	 * that just came up gives the primary a full failover_timeout.
	 */
	TimestampTz last_seen_primary;	/* for people (rk_status) */
	int64		last_seen_primary_ms;	/* the same on the monotonic clock, for decisions */
	int64		last_vote_ms;	/* when this node last granted a vote (monotonic) */

	/*
	 * The commit guard.  On a primary in a cluster of two or more, a
	 * transaction may commit only while the lease (renewed each time a
	 * majority answers) runs, and never once the node is fenced.
	 */
	pg_atomic_uint32 guard_enforced;
	pg_atomic_uint64 lease_until;	/* monotonic ms (core/clock.h) */
	pg_atomic_uint32 fenced;
	pg_atomic_uint32 elected;	/* rk_state_elected(&state), for the guard */

	/* Counters since the server started, for GET /metrics (worker/http.c). */
	pg_atomic_uint64 n_elections;	/* elections this node ran */
	pg_atomic_uint64 n_promotions;	/* pg_promote() calls that finished, after a won election */
	pg_atomic_uint64 n_votes;	/* votes this node granted */
	pg_atomic_uint64 n_probe_errors;	/* probes of another node that got no valid answer */

	/*
	 * While fenced for a forced failover or a switchover, only this standby
	 * (the one being promoted) may still stream from here: any other would
	 * receive WAL the new primary never had.
	 */
	char		fence_target[NAMEDATALEN];

	/* A manual failover asked of this node's worker by a backend. */
	uint32		request_seq;
	uint32		done_seq;
	bool		request_force;
	bool		request_dry_run;
	bool		request_planned;	/* rk_switchover: only with a healthy primary */
	bool		rejoin_requested;	/* rk_rejoin() or a switchover's fence */
	pid_t		switchover_caller; /* a backend here waiting for rk_switchover() or rk_failover() */
	bool		diverged;		/* a standby that cannot follow the new timeline */

	/*
	 * A standby knows how far its WAL goes only once the startup process
	 * has replayed all of its local WAL (it then asks for streaming, or
	 * waits for WAL): until then rk_local_lsn() is the replay position,
	 * which may lie behind WAL on disk that holds acknowledged commits.
	 * Set by the worker, never cleared while the server runs.
	 */
	bool		wal_end_known;
	bool		node_secret_ok; /* RK_NODE_PASS_FILE holds the node role's current secret */
	bool		node_secret_checked;	/* ... as the worker has looked since the start */

	/*
	 * The timing settings are per node; what the others said of theirs
	 * bounds this node's.  The smallest failover_timeout of any node (a
	 * standby may vote that soon after its last contact) bounds the lease
	 * here; the longest lease of any node bounds how soon this node may
	 * vote without the primary's word.  0: nothing heard yet.
	 */
	pg_atomic_uint64 cluster_min_failover_ms;
	pg_atomic_uint64 cluster_max_lease_ms;

	/* The WAL receiver's last message time, and when it last changed (monotonic ms). */
	pg_atomic_uint64 walrcv_last_msg;
	pg_atomic_uint64 walrcv_heard_ms;
	bool		result_ok;
	bool		result_forced_loss; /* promoted without a majority or the sync quorum */
	char		result[RK_RESULT_LEN];
} RkShared;

extern RkShared *rk_shared;

extern void rk_shmem_install(void);
extern void rk_wake_worker(void);

#endif							/* RK_SHMEM_H */
