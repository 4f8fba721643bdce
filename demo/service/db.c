/*
 * db.c
 *		Connection pools for the demo service (see db.h): building each
 *		member's connection string, connecting and reconnecting, running a
 *		statement with a deadline, and sorting libpq failures into "the
 *		database is not there right now" (503) versus everything else.
 *
 * Every session gets statement_timeout = --query-timeout, so a live server
 * cancels a stuck statement itself.  Statements are sent with
 * PQsendQueryParams and waited for with poll() on the connection's socket,
 * the way postgres_fdw waits, with a client deadline one second longer: a
 * server or network that went silent costs a request that long, not a hung
 * thread.  Connecting is bounded by connect_timeout, which is added to every
 * connection string that does not set one.
 */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define DEFAULT_CONNECT_TIMEOUT "2"

/* libpq notices (e.g. "relation already exists, skipping") are not errors. */
static void
quiet_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

static void
append_quoted(strbuf *sb, const char *key, const char *val)
{
	if (sb->len > 0)
		sb_append(sb, " ", 1);
	sb_puts(sb, key);
	sb_append(sb, "='", 2);
	for (const char *p = val; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			sb_append(sb, "\\", 1);
		sb_append(sb, p, 1);
	}
	sb_append(sb, "'", 1);
}

/* Rotate a comma-separated list left by shift; lists of one item are kept. */
static void
append_rotated(strbuf *sb, const char *key, const char *list, int shift)
{
	const char *items[64];
	size_t		lens[64];
	int			n = 0;
	const char *p = list;
	strbuf		out = {0};

	for (;;)
	{
		const char *comma = strchr(p, ',');

		if (n == 64)
		{
			/* absurdly long list: leave it alone */
			append_quoted(sb, key, list);
			return;
		}
		items[n] = p;
		lens[n] = comma ? (size_t) (comma - p) : strlen(p);
		n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (n <= 1 || shift % n == 0)
	{
		append_quoted(sb, key, list);
		return;
	}
	for (int j = 0; j < n; j++)
	{
		int			k = (j + shift) % n;

		if (j > 0)
			sb_append(&out, ",", 1);
		sb_append(&out, items[k], lens[k]);
	}
	if (out.oom)
		sb->oom = true;
	else
		append_quoted(sb, key, out.data);
	sb_free(&out);
}

char *
db_rotate_conninfo(const char *conninfo, int shift)
{
	PQconninfoOption *opts;
	char	   *err = NULL;
	strbuf		sb = {0};
	bool		has_timeout = false;
	bool		has_encoding = false;
	bool		has_fallback = false;

	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		/*
		 * libpq's message can quote a piece of the string, which may be a
		 * password; do not log it.
		 */
		PQfreemem(err);
		return NULL;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "host") == 0 ||
			strcmp(o->keyword, "hostaddr") == 0 ||
			strcmp(o->keyword, "port") == 0)
			append_rotated(&sb, o->keyword, o->val, shift);
		else
			append_quoted(&sb, o->keyword, o->val);
		if (strcmp(o->keyword, "connect_timeout") == 0)
			has_timeout = true;
		else if (strcmp(o->keyword, "client_encoding") == 0)
			has_encoding = true;
		else if (strcmp(o->keyword, "fallback_application_name") == 0)
			has_fallback = true;
	}
	PQconninfoFree(opts);

	if (!has_timeout)
		append_quoted(&sb, "connect_timeout", DEFAULT_CONNECT_TIMEOUT);
	if (!has_encoding)
		append_quoted(&sb, "client_encoding", "UTF8");
	if (!has_fallback)
		append_quoted(&sb, "fallback_application_name", "rk_social");
	if (sb.oom)
	{
		sb_free(&sb);
		return NULL;
	}
	return sb.data;
}

bool
db_pool_init(db_pool *pool, const char *role, const char *unreachable,
			 const char *conninfo, int n, bool rotate, int timeout_ms)
{
	memset(pool, 0, sizeof(*pool));
	pool->role = role;
	pool->unreachable = unreachable;
	pool->timeout_ms = timeout_ms;
	atomic_init(&pool->next, 0);
	pool->members = calloc((size_t) n, sizeof(db_member));
	if (pool->members == NULL)
		return false;
	pool->nmembers = n;
	for (int i = 0; i < n; i++)
	{
		db_member  *m = &pool->members[i];

		pthread_mutex_init(&m->lock, NULL);
		m->pool = pool;
		m->index = i;
		m->conninfo = db_rotate_conninfo(conninfo, rotate ? i : 0);
		if (m->conninfo == NULL)
		{
			rk_log("error", "%s connection string is not valid (check its syntax and quoting)",
				   role);
			db_pool_close(pool);
			return false;
		}
	}
	return true;
}

void
db_pool_close(db_pool *pool)
{
	for (int i = 0; i < pool->nmembers; i++)
	{
		db_member  *m = &pool->members[i];

		pthread_mutex_lock(&m->lock);
		if (m->conn)
			PQfinish(m->conn);
		m->conn = NULL;
		pthread_mutex_unlock(&m->lock);
		pthread_mutex_destroy(&m->lock);
		free(m->conninfo);
	}
	free(pool->members);
	pool->members = NULL;
	pool->nmembers = 0;
}

/* Drop the trailing newline and spaces libpq leaves on its messages. */
static void
trim_detail(db_outcome *out)
{
	size_t		n = strlen(out->detail);

	while (n > 0 && (out->detail[n - 1] == '\n' || out->detail[n - 1] == ' '))
		out->detail[--n] = '\0';
}

static void
set_backend(db_member *m, db_outcome *out)
{
	const char *host = m->conn ? PQhost(m->conn) : NULL;
	const char *port = m->conn ? PQport(m->conn) : NULL;

	if (host && port)
		snprintf(out->backend, sizeof(out->backend), "%s:%s", host, port);
	else
		out->backend[0] = '\0';
}

static void
drop_conn(db_member *m)
{
	if (m->conn)
		PQfinish(m->conn);
	m->conn = NULL;
}

static PGresult *exec_with_deadline(PGconn *conn, int timeout_ms, const char *sql,
									int nparams, const char *const *params,
									bool *timed_out);

/*
 * The client-side deadline for one statement: the server's statement_timeout
 * plus a second for its error to arrive.  It only fires when the server or
 * the network went silent.
 */
static int
client_deadline_ms(const db_pool *pool)
{
	return pool->timeout_ms > 0 ? pool->timeout_ms + 1000 : 0;
}

/*
 * Set the session's statement_timeout to the pool's timeout so that a server
 * that is alive cancels a stuck statement itself (and a write that timed out
 * is not committed behind the client's back).
 */
static bool
set_statement_timeout(db_member *m, PGconn *c, db_outcome *out)
{
	char		ms[16];
	const char *params[1] = {ms};
	bool		timed_out;
	PGresult   *res;
	bool		ok;

	if (m->pool->timeout_ms <= 0)
		return true;
	snprintf(ms, sizeof(ms), "%d", m->pool->timeout_ms);
	res = exec_with_deadline(c, client_deadline_ms(m->pool),
							 "SELECT pg_catalog.set_config('statement_timeout', $1, false)",
							 1, params, &timed_out);
	ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		snprintf(out->detail, sizeof(out->detail), "%s[%d]: cannot set statement_timeout: %s",
				 m->pool->role, m->index,
				 timed_out ? "timeout" : res ? PQresultErrorMessage(res) : PQerrorMessage(c));
	PQclear(res);
	return ok;
}

/*
 * Make sure m has a usable connection, (re)connecting if needed.  An idle
 * connection whose socket turned readable has been closed by the server
 * (shutdown, crash, pg_terminate_backend); it is found here, before a
 * statement is sent on it, and replaced.  Caller holds m->lock.
 */
static bool
ensure_connected(db_member *m, db_outcome *out)
{
	if (m->conn && PQstatus(m->conn) == CONNECTION_OK)
	{
		for (int tries = 0; tries < 3; tries++)
		{
			struct pollfd pfd = {.fd = PQsocket(m->conn), .events = POLLIN};

			if (poll(&pfd, 1, 0) <= 0)
				break;
			if (!PQconsumeInput(m->conn) || PQstatus(m->conn) != CONNECTION_OK)
			{
				rk_log("warning", "%s[%d]: connection lost while idle, reconnecting: %s",
					   m->pool->role, m->index, PQerrorMessage(m->conn));
				drop_conn(m);
				break;
			}
		}
	}
	if (m->conn && PQstatus(m->conn) != CONNECTION_OK)
		drop_conn(m);
	if (m->conn == NULL)
	{
		PGconn	   *c = PQconnectdb(m->conninfo);

		if (c == NULL || PQstatus(c) != CONNECTION_OK)
		{
			snprintf(out->detail, sizeof(out->detail), "%s[%d]: cannot connect: %s",
					 m->pool->role, m->index, c ? PQerrorMessage(c) : "out of memory");
			trim_detail(out);
			if (c)
				PQfinish(c);
			out->kind = DB_UNAVAILABLE;
			snprintf(out->reason, sizeof(out->reason), "%s", m->pool->unreachable);
			return false;
		}
		PQsetNoticeProcessor(c, quiet_notice, NULL);
		if (!set_statement_timeout(m, c, out))
		{
			PQfinish(c);
			out->kind = DB_UNAVAILABLE;
			snprintf(out->reason, sizeof(out->reason), "%s", m->pool->unreachable);
			return false;
		}
		m->conn = c;
		rk_log("info", "%s[%d]: connected to %s:%s", m->pool->role, m->index,
			   PQhost(c), PQport(c));
	}
	return true;
}

static long
ms_until(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000L +
		(deadline->tv_nsec - now.tv_nsec) / 1000000L;
}

/*
 * Send one statement and wait for its result with a deadline.  Returns the
 * first error result, else the last result; NULL when the connection failed
 * or the deadline passed (*timed_out says which).
 */
static PGresult *
exec_with_deadline(PGconn *conn, int timeout_ms, const char *sql, int nparams,
				   const char *const *params, bool *timed_out)
{
	struct timespec deadline;
	PGresult   *keep = NULL;

	*timed_out = false;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L)
	{
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return NULL;
	for (;;)
	{
		PGresult   *r;

		while (PQisBusy(conn))
		{
			struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
			long		wait_ms = timeout_ms > 0 ? ms_until(&deadline) : -1;
			int			rc;

			if (timeout_ms > 0 && wait_ms <= 0)
			{
				*timed_out = true;
				PQclear(keep);
				return NULL;
			}
			rc = poll(&pfd, 1, (int) wait_ms);
			if (rc < 0 && errno != EINTR)
			{
				PQclear(keep);
				return NULL;
			}
			if (rc > 0 && !PQconsumeInput(conn))
			{
				PQclear(keep);
				return NULL;
			}
		}
		r = PQgetResult(conn);
		if (r == NULL)
			break;
		if (keep == NULL ||
			(PQresultStatus(keep) != PGRES_FATAL_ERROR &&
			 PQresultStatus(r) == PGRES_FATAL_ERROR))
		{
			PQclear(keep);
			keep = r;
		}
		else
			PQclear(r);
	}
	return keep;
}

/* Sort a failed statement into a db_kind; may drop the member's connection. */
static void
classify_failure(db_member *m, PGresult *res, bool timed_out, db_outcome *out)
{
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(m->conn);
	bool		drop = false;
	bool		writes = strcmp(m->pool->role, "write") == 0;

	/*
	 * When the server went silent or away with the statement sent, a write may
	 * or may not have committed; say so rather than let a client assume it
	 * did not.
	 */
	if (timed_out)
	{
		out->kind = DB_UNAVAILABLE;
		snprintf(out->reason, sizeof(out->reason), "%s",
				 writes ? "database timeout, write outcome unknown" : "database timeout");
		msg = "no answer before the client deadline";
		drop = true;
	}
	else if (res == NULL || sqlstate == NULL || PQstatus(m->conn) != CONNECTION_OK ||
			 strncmp(sqlstate, "08", 2) == 0)
	{
		out->kind = DB_UNAVAILABLE;
		snprintf(out->reason, sizeof(out->reason), "%s",
				 writes ? "database connection lost, write outcome unknown" :
				 "database connection lost");
		drop = true;
	}
	else if (strcmp(sqlstate, "25006") == 0)
	{
		/* the server we hold was demoted: find the primary again */
		out->kind = DB_UNAVAILABLE;
		snprintf(out->reason, sizeof(out->reason), "server is read-only, primary not reachable");
		drop = true;
	}
	else if (strcmp(sqlstate, "57P01") == 0 || strcmp(sqlstate, "57P02") == 0 ||
			 strcmp(sqlstate, "57P03") == 0)
	{
		out->kind = DB_UNAVAILABLE;
		snprintf(out->reason, sizeof(out->reason), "database server shutting down");
		drop = true;
	}
	else if (strcmp(sqlstate, "57014") == 0)
	{
		/* statement_timeout (set from --query-timeout) or a cancel */
		out->kind = DB_UNAVAILABLE;
		snprintf(out->reason, sizeof(out->reason), "database timeout");
	}
	else if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
	{
		/* e.g. a standby cancelled the read for a conflict with recovery */
		out->kind = DB_UNAVAILABLE;
		snprintf(out->reason, sizeof(out->reason), "statement cancelled, retry");
	}
	else if (strncmp(sqlstate, "22", 2) == 0)
	{
		out->kind = DB_BAD_INPUT;
		snprintf(out->reason, sizeof(out->reason), "invalid value");
	}
	else
	{
		out->kind = DB_FAILED;
		snprintf(out->reason, sizeof(out->reason), "database error");
	}
	snprintf(out->detail, sizeof(out->detail), "%s[%d] on %s: SQLSTATE %s: %s",
			 m->pool->role, m->index, out->backend[0] ? out->backend : "?",
			 sqlstate ? sqlstate : "none", msg);
	trim_detail(out);
	if (drop)
		drop_conn(m);
}

/* Run sql on one member; caller holds m->lock. */
static PGresult *
run_locked(db_member *m, const char *sql, int nparams,
		   const char *const *params, db_outcome *out)
{
	PGresult   *res;
	bool		timed_out;

	out->backend[0] = '\0';
	out->reason[0] = '\0';
	out->detail[0] = '\0';
	if (!ensure_connected(m, out))
		return NULL;
	set_backend(m, out);
	res = exec_with_deadline(m->conn, client_deadline_ms(m->pool), sql, nparams, params,
							 &timed_out);
	if (res && (PQresultStatus(res) == PGRES_TUPLES_OK ||
				PQresultStatus(res) == PGRES_COMMAND_OK))
	{
		out->kind = DB_OK;
		return res;
	}
	classify_failure(m, res, timed_out, out);
	PQclear(res);
	return NULL;
}

PGresult *
db_run(db_pool *pool, int max_attempts, const char *sql, int nparams,
	   const char *const *params, db_outcome *out)
{
	unsigned	start = atomic_fetch_add(&pool->next, 1);
	int			n = pool->nmembers;
	int			first = -1;

	if (max_attempts > n)
		max_attempts = n;
	if (max_attempts < 1)
		max_attempts = 1;

	/*
	 * First member: round-robin from the cursor, taking the first one that is
	 * free so that one slow statement does not queue others behind it; if all
	 * are busy, wait for the one the cursor points at.
	 */
	for (int k = 0; k < n; k++)
	{
		int			i = (int) ((start + (unsigned) k) % (unsigned) n);

		if (pthread_mutex_trylock(&pool->members[i].lock) == 0)
		{
			first = i;
			break;
		}
	}
	if (first < 0)
	{
		first = (int) (start % (unsigned) n);
		pthread_mutex_lock(&pool->members[first].lock);
	}

	for (int a = 0; a < max_attempts; a++)
	{
		db_member  *m = &pool->members[(first + a) % n];
		PGresult   *res;

		if (a > 0)
			pthread_mutex_lock(&m->lock);
		res = run_locked(m, sql, nparams, params, out);
		pthread_mutex_unlock(&m->lock);
		if (res || out->kind != DB_UNAVAILABLE)
			return res;
		if (a + 1 < max_attempts)
			rk_log("warning", "%s, trying the next %s connection", out->detail, pool->role);
	}
	return NULL;
}

PGresult *
db_run_on(db_pool *pool, int index, const char *sql, int nparams,
		  const char *const *params, db_outcome *out)
{
	db_member  *m = &pool->members[index];
	PGresult   *res;

	pthread_mutex_lock(&m->lock);
	res = run_locked(m, sql, nparams, params, out);
	pthread_mutex_unlock(&m->lock);
	return res;
}

int
db_pool_warm(db_pool *pool)
{
	int			up = 0;

	for (int i = 0; i < pool->nmembers; i++)
	{
		db_member  *m = &pool->members[i];
		db_outcome	out;

		pthread_mutex_lock(&m->lock);
		if (ensure_connected(m, &out))
			up++;
		else
			rk_log("warning", "%s", out.detail);
		pthread_mutex_unlock(&m->lock);
	}
	return up;
}
