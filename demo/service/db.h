/*
 * db.h
 *		Pools of libpq connections for the demo service: one pool that writes
 *		(its connection string finds the primary with
 *		target_session_attrs=read-write) and one that reads (its members'
 *		host lists are rotated so that they spread over the standbys).
 *
 * A member is used by one request thread at a time.  A member whose
 * connection broke is dropped and reconnected from its multi-host string by
 * the next request that picks it, so a failover never needs a restart of the
 * service: the string already names every node.
 */
#ifndef RK_DB_H
#define RK_DB_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "json.h"

typedef enum db_kind
{
	DB_OK,
	DB_UNAVAILABLE,				/* no server, connection lost, read-only,
								 * shutting down, timeout: HTTP 503 */
	DB_BAD_INPUT,				/* SQLSTATE class 22, the data was refused:
								 * HTTP 400 */
	DB_FAILED					/* any other error: HTTP 500 */
} db_kind;

typedef struct db_outcome
{
	db_kind		kind;
	char		reason[96];		/* short, safe to show to the client */
	char		backend[160];	/* host:port that answered, when known */
	char		detail[400];	/* for the log: member, server, libpq message */
} db_outcome;

typedef struct db_member
{
	pthread_mutex_t lock;
	struct db_pool *pool;
	int			index;
	char	   *conninfo;		/* rebuilt, rotated connection string */
	PGconn	   *conn;			/* NULL while not connected */
} db_member;

typedef struct db_pool
{
	const char *role;			/* "write" or "read", for the log */
	const char *unreachable;	/* client-facing reason when connecting fails */
	int			nmembers;
	db_member  *members;
	atomic_uint next;			/* round-robin cursor */
	int			timeout_ms;		/* per statement, 0 = none */
} db_pool;

/*
 * Build a pool of n members from one libpq connection string.  With rotate,
 * member i gets the host, hostaddr and port lists rotated left by i.  Returns
 * false (after logging) when the string cannot be parsed.
 */
extern bool db_pool_init(db_pool *pool, const char *role, const char *unreachable,
						 const char *conninfo, int n, bool rotate, int timeout_ms);
extern void db_pool_close(db_pool *pool);

/* Try to connect every member now, logging failures; returns how many are up. */
extern int	db_pool_warm(db_pool *pool);

/*
 * Run one parameterized statement on the pool.  Members are chosen round-robin;
 * when a member is unavailable the next one is tried, up to max_attempts
 * members in all.  On DB_OK the result is returned and must be PQclear'ed; on
 * anything else NULL is returned and *out says why.
 */
extern PGresult *db_run(db_pool *pool, int max_attempts, const char *sql,
						int nparams, const char *const *params, db_outcome *out);

/* The same on one given member (for health checks). */
extern PGresult *db_run_on(db_pool *pool, int index, const char *sql,
						   int nparams, const char *const *params, db_outcome *out);

/*
 * Rebuild conninfo with its host/hostaddr/port lists rotated left by shift
 * and the service's defaults added (connect_timeout, client_encoding,
 * fallback_application_name).  Returns a malloc'ed string or NULL.
 */
extern char *db_rotate_conninfo(const char *conninfo, int shift);

#endif							/* RK_DB_H */
