/*-------------------------------------------------------------------------
 *
 * replication_kit.h
 *		Declarations shared by the SQL-callable functions (extension/) and
 *		the background worker (worker/): settings, the node-local state kept
 *		in shared memory and in PGDATA, and the registry helpers.
 *
 * The split of state follows one rule.  Cluster topology (which nodes
 * exist, the synchronous policy, the current term as last committed) lives
 * in the extension's tables, written on the primary and replicated to the
 * standbys.  What one node knows by itself (its name, its vote, what it
 * saw of its peers a moment ago) lives in shared memory, and the part of
 * it that must survive a restart in a small file in PGDATA.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REPLICATION_KIT_H
#define REPLICATION_KIT_H

#include "postgres.h"

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "access/xact.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#include "compat.h"

#define RK_EXTENSION_NAME	"replication_kit"
#define RK_LOG_PREFIX		"replication_kit: "

/* Nodes a registry can hold; "a primary with a few standbys". */
#define RK_MAX_NODES		16
#define RK_HOST_LEN			256
#define RK_REASON_LEN		256

/* Files the kit keeps in PGDATA. */
#define RK_STATE_FILE		"replication_kit.state"
#define RK_PASS_FILE		"replication_kit.pgpass"

/* Marks the pg_hba.conf lines the kit owns; it never edits any other line. */
#define RK_HBA_MARK			"# replication_kit"

/* Settings (replication_kit.*), defined in replication_kit.c. */
extern char *rk_node_name_setting;
extern char *rk_database;
extern int	rk_probe_interval_ms;
extern int	rk_probe_timeout_ms;
extern int	rk_failover_timeout_ms;
extern int	rk_fence_timeout_ms;
extern bool rk_auto_failover;
extern bool rk_auto_rejoin;

/*
 * What this node remembers across restarts: its name, the highest term it
 * has seen and whom it voted for in it, and the role it last had.  Written
 * with a temporary file and durable_rename, read at startup.
 */
typedef struct RkNodeState
{
	char		node_name[NAMEDATALEN];
	uint64		term;			/* highest term this node has seen */
	char		voted_for[NAMEDATALEN]; /* vote given in voted_term, or "" */
	uint64		voted_term;
	char		role[16];		/* "primary", "standby" or "" */
	char		primary_name[NAMEDATALEN];	/* the primary of `term`, if known */
	int			members;		/* nodes that count in a majority, as last seen */
	bool		rejoin_pending; /* an old primary started as a standby: check it follows */
	uint64		rewound_term;	/* the term of this node's last rewind */
	char		repl_role[NAMEDATALEN]; /* the role peers are reached as */

	/*
	 * The other nodes, as the registry last listed them: the postmaster
	 * asks them, before it accepts a connection, whether a newer term has
	 * another primary (the fence at start).
	 */
	int			npeers;
	char		peer_name[RK_MAX_NODES][NAMEDATALEN];
	char		peer_host[RK_MAX_NODES][RK_HOST_LEN];
	int			peer_port[RK_MAX_NODES];
} RkNodeState;

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

	/* Last probe of this peer (unused for the node itself). */
	bool		reachable;
	TimestampTz last_ok;		/* last successful probe, 0 if never */
	TimestampTz last_attempt;
	bool		in_recovery;
	TimeLineID	timeline;
	XLogRecPtr	lsn;			/* flushed (primary) or received (standby) */
	uint64		term;
	char		primary_name[NAMEDATALEN];	/* whom it follows in `term` */
	char		voted_for[NAMEDATALEN]; /* its vote in `term`, if any */
	long		silence_ms;		/* since its last contact with the primary */
	bool		fenced;
	char		error[RK_REASON_LEN];
} RkPeer;

/*
 * Shared memory: one instance per server.  `lock` protects everything but
 * the atomics, which the commit guard reads without a lock on every commit.
 */
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

	/* What the worker is doing, for rk_status. */
	char		worker_state[32];
	char		readiness[RK_REASON_LEN];

	/*
	 * Last contact with the primary: a probe that reached it, WAL from it,
	 * or the primary's own call.  Starts at server start, so that a node
	 * that just came up gives the primary a full failover_timeout.
	 */
	TimestampTz last_seen_primary;
	TimestampTz last_vote_at;	/* when this node last granted a vote */

	/*
	 * The commit guard.  On a primary in a cluster of two or more, a
	 * transaction may commit only while the lease (renewed each time a
	 * majority answers) runs, and never once the node is fenced.
	 */
	pg_atomic_uint32 guard_enforced;
	pg_atomic_uint64 lease_until;	/* TimestampTz */
	pg_atomic_uint32 fenced;

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
	bool		result_ok;
	char		result[1024];
} RkShared;

extern RkShared *rk_shared;

/* replication_kit.c */
extern char *rk_simulate_partition;
extern void rk_require_preloaded(void);
extern void rk_require_superuser(const char *funcname);
extern void rk_require_primary(const char *funcname);
extern void rk_require_not_in_transaction_block(const char *funcname);
extern void rk_wake_worker(void);

/* config.c: ALTER SYSTEM from C, reloads, setting values */
extern void rk_alter_system(const char *name, const char *value);
extern void rk_reload_config(void);
extern char *rk_setting_value(const char *name);
extern char *rk_file_setting_value(const char *name);
extern char *rk_read_whole_file(const char *path, size_t *len);
extern void rk_guarded(void (*steps) (void *), void (*undo) (void *), void *arg);
extern char *rk_auto_conf_snapshot(size_t *len);
extern void rk_auto_conf_restore(const char *content, size_t len);
extern void rk_commit_locally(void);

/* hba.c: pg_hba.conf lines owned by the kit */
typedef struct RkHbaEdit
{
	char	   *path;
	char	   *old_content;	/* NULL until a rewrite happened */
	size_t		old_len;
} RkHbaEdit;
extern char *rk_normalize_address(const char *address);
extern bool rk_hba_covers(const char *database, const char *role, const char *host);
extern int	rk_hba_add_lines(RkHbaEdit *edit, const char *role, const char *address,
							 const char *method, const char *owner_tag);
extern int	rk_hba_remove_lines(RkHbaEdit *edit, const char *role,
								const char *address, const char *owner_tag,
								bool *foreign_match);
extern void rk_hba_restore(RkHbaEdit *edit);

/* registry.c: the extension's tables through SPI */
extern void rk_validate_node_name(const char *name);
extern void rk_validate_host(const char *host);
extern void rk_validate_port(bool isnull, int32 port);
extern void rk_validate_role_name(const char *role);
extern const char *rk_schema(void);
extern const char *rk_table(const char *relname);
extern char *rk_query_value(const char *sql, int nargs, Oid *argtypes, Datum *values);
extern bool rk_registry_has_primary(char **primary_name);
extern char *rk_registry_replication_role(void);
extern char *rk_sync_names_from_registry(void);
extern int	rk_registry_sync_standby_count(void);
extern void rk_registry_event(const char *kind, const char *node, const char *detail);

/* standby.c */
extern char *rk_apply_sync_names(void);
extern char *rk_clone_command(const char *datadir, const char *name, const char *host, int port,
							  const char *role);

/* state_file.c */
extern bool rk_state_read(RkNodeState *state);
extern void rk_state_write(const RkNodeState *state);
extern void rk_state_save_locked(const RkNodeState *st);
extern void rk_state_load_locked(void);
extern void rk_state_set_identity(const char *node_name, const char *role);
extern void rk_state_start_term(const char *primary_name);

/* status.c */
extern char *rk_self_name(void);
extern char *rk_primary_conninfo_appname(void);

/* peer_api.c */
extern bool rk_partitioned_from(const char *node_name);
extern bool rk_walreceiver_hears_primary(int window_ms);
extern int	rk_effective_fence_ms(void);
extern XLogRecPtr rk_local_lsn(void);
extern void rk_commit_guard(XactEvent event, void *arg);
extern void rk_replication_gate(void *port, int status);
extern bool rk_local_failover(bool force, bool dry_run, bool planned, char **result);
extern bool rk_guard_bypass;

/* fence_start.c */
extern void rk_fence_at_start(void);

/* worker/worker.c */
extern void rk_register_worker(void);
PGDLLEXPORT void rk_worker_main(Datum main_arg);

#endif							/* REPLICATION_KIT_H */
