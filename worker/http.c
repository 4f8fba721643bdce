/*-------------------------------------------------------------------------
 *
 * http.c
 *		The read-only HTTP endpoint (replication_kit.http_address), for
 *		load balancers, readiness probes and monitoring:
 *
 *		GET /primary	200 only on the primary holding its lease
 *		GET /standby	200 on a standby that streams (?lag=N: and whose
 *						replay is at most N bytes behind the primary)
 *		GET /health		200 while the server and the kit's worker run
 *		GET /status		rk_status() as JSON
 *		GET /metrics	Prometheus text format
 *
 * A background worker of its own, so that no request can hold up the
 * failover worker's rounds.  One poll() loop, no threads: at most
 * RK_HTTP_MAX_CONN connections (a new one pushes out the oldest that has
 * not sent its request yet), a request head of at most RK_HTTP_HEAD_MAX
 * bytes within RK_HTTP_HEAD_MS, RK_HTTP_DEADLINE_MS from accept to the
 * last byte of the answer: a slow client is cut off, it never waits on
 * us.  Nothing it answers needs a credential, and nothing it does changes
 * state: it reads shared memory, and rk_status() for /status, at most
 * once per RK_HTTP_STATUS_CACHE_MS and under short lock and statement
 * timeouts, so that a lock on the registry never holds up /primary.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <ctype.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/walreceiver.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "core/clock.h"
#include "core/compat.h"
#include "core/guard.h"
#include "core/registry.h"
#include "core/settings.h"
#include "core/shmem.h"
#include "worker/worker.h"

#define RK_HTTP_MAX_CONN	64
#define RK_HTTP_HEAD_MAX	4096
#define RK_HTTP_HEAD_MS		1000	/* for the whole request head */
#define RK_HTTP_DEADLINE_MS 2000	/* from accept to the last byte of the answer */
#define RK_HTTP_ACCEPT_BURST 16		/* connections accepted per loop */
#define RK_HTTP_RETRY_MS	10000	/* between tries to bind the address */
#define RK_HTTP_STATUS_CACHE_MS 1000
#define RK_HTTP_STATUS_TIMEOUT_MS 250

typedef struct HttpConn
{
	int			fd;
	int64		accepted;		/* monotonic ms */
	char		head[RK_HTTP_HEAD_MAX + 1];
	int			headlen;
	StringInfoData out;			/* the answer, once there is one (TopMemoryContext) */
	int			sent;
	bool		answering;
	bool		draining;		/* answered; reads what the client still sends until it closes */
} HttpConn;

static HttpConn conns[RK_HTTP_MAX_CONN];
static int	listen_fd = -1;
static MemoryContext request_cxt;	/* reset after every loop */
static char *status_cache;		/* the last /status body, TopMemoryContext */
static int64 status_cached_at;

void
rk_register_http_worker(void)
{
	BackgroundWorker worker;

	if (rk_http_address == NULL || rk_http_address[0] == '\0')
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, RK_EXTENSION_NAME);
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rk_http_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "replication_kit http");
	snprintf(worker.bgw_type, BGW_MAXLEN, "replication_kit http");
	RegisterBackgroundWorker(&worker);
}

/* Open the listening socket; false (logged) if the address does not work. */
static bool
open_listener(void)
{
	char	   *addr = pstrdup(rk_http_address);
	char	   *host = addr;
	char	   *port = strrchr(addr, ':');
	struct addrinfo hints = {0};
	struct addrinfo *res = NULL;
	int			rc;
	int			one = 1;

	if (port == NULL || port[1] == '\0')
	{
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "replication_kit.http_address \"%s\" is not host:port; the HTTP endpoint is off",
						rk_http_address)));
		pfree(addr);
		return false;
	}
	*port++ = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']')
	{
		host[strlen(host) - 1] = '\0';
		host++;
	}
	if (strcmp(host, "*") == 0 || host[0] == '\0')
		host = NULL;
	/* Any address: IPv6 and, mapped, IPv4 on one socket where the kernel has IPv6. */
	hints.ai_family = host ? AF_UNSPEC : AF_INET6;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 && host == NULL)
	{
		hints.ai_family = AF_INET;
		rc = getaddrinfo(host, port, &hints, &res);
	}
	if (rc != 0 || res == NULL)
	{
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "HTTP endpoint: cannot resolve \"%s\": %s", rk_http_address, gai_strerror(rc))));
		pfree(addr);
		return false;
	}
	listen_fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd >= 0 && res->ai_family == AF_INET6 && host == NULL)
	{
		int			zero = 0;

		(void) setsockopt(listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	}
	if (listen_fd < 0 ||
		setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		bind(listen_fd, res->ai_addr, res->ai_addrlen) < 0 ||
		listen(listen_fd, RK_HTTP_MAX_CONN) < 0)
	{
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "HTTP endpoint: cannot listen on %s: %m; trying again in %d s",
						rk_http_address, RK_HTTP_RETRY_MS / 1000)));
		if (listen_fd >= 0)
			close(listen_fd);
		listen_fd = -1;
		freeaddrinfo(res);
		pfree(addr);
		return false;
	}
	freeaddrinfo(res);
	pfree(addr);
	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "HTTP endpoint listening on %s", rk_http_address)));
	return true;
}

static void
close_conn(HttpConn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->out.data)
		pfree(c->out.data);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static const char *
status_text(int code)
{
	switch (code)
	{
		case 200:
			return "OK";
		case 400:
			return "Bad Request";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 408:
			return "Request Timeout";
		case 431:
			return "Request Header Fields Too Large";
		case 500:
			return "Internal Server Error";
		default:
			return "Service Unavailable";
	}
}

static void
respond(HttpConn *c, int code, const char *type, const char *body, bool head_only)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	if (c->out.data)
		pfree(c->out.data);
	initStringInfo(&c->out);
	MemoryContextSwitchTo(old);
	appendStringInfo(&c->out,
					 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
					 "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
					 code, status_text(code), type, strlen(body),
					 code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head_only)
		appendStringInfoString(&c->out, body);
	c->sent = 0;
	c->answering = true;
}

/* A JSON string, escaped. */
static void
json_str(StringInfo s, const char *v)
{
	escape_json(s, v ? v : "");
}

/* What a node's own state looks like, shared by /primary, /standby and /health. */
typedef struct Self
{
	bool		in_recovery;
	bool		acknowledges;
	bool		fenced;
	bool		streaming;
	bool		worker_running;
	bool		paused;
	uint64		term;
	int64		lease_ms;		/* remaining, primary only */
	char		name[NAMEDATALEN];
	char		primary[NAMEDATALEN];
	XLogRecPtr	primary_lsn;	/* the primary's WAL end, as its last message to the WAL receiver said */
	bool		primary_lsn_known;
	XLogRecPtr	receive_lsn;
	XLogRecPtr	replay_lsn;
	int64		lag_bytes;		/* -1: unknown */
	double		lag_seconds;
} Self;

static void
read_self(Self *s)
{
	pid_t		worker;

	memset(s, 0, sizeof(*s));
	s->in_recovery = RecoveryInProgress();
	s->acknowledges = !s->in_recovery && rk_acknowledges_commits();
	s->fenced = !s->in_recovery && pg_atomic_read_u32(&rk_shared->fenced) != 0;
	if (!s->in_recovery && pg_atomic_read_u32(&rk_shared->guard_enforced) != 0)
		s->lease_ms = Max(0, (int64) pg_atomic_read_u64(&rk_shared->lease_until) - rk_monotonic_ms());

	LWLockAcquire(rk_shared->lock, LW_SHARED);
	worker = rk_shared->worker_pid;
	s->term = rk_shared->state.term;
	s->paused = rk_shared->paused;
	strlcpy(s->name, rk_shared->state.node_name, NAMEDATALEN);
	strlcpy(s->primary, rk_shared->state.primary_name, NAMEDATALEN);
	LWLockRelease(rk_shared->lock);
	s->worker_running = worker != 0 && kill(worker, 0) == 0;

	s->lag_bytes = -1;
	if (s->in_recovery)
	{
		WalRcvState state;
		TimestampTz latest;

		SpinLockAcquire(&WalRcv->mutex);
		state = WalRcv->walRcvState;
		s->primary_lsn = WalRcv->latestWalEnd;
		SpinLockRelease(&WalRcv->mutex);
		s->primary_lsn_known = state == WALRCV_STREAMING && s->primary_lsn != InvalidXLogRecPtr;
		s->streaming = state == WALRCV_STREAMING;
		s->receive_lsn = GetWalRcvFlushRecPtr(NULL, NULL);
		s->replay_lsn = GetXLogReplayRecPtr(NULL);
		if (s->primary_lsn_known)
			s->lag_bytes = s->primary_lsn > s->replay_lsn ? (int64) (s->primary_lsn - s->replay_lsn) : 0;
		latest = GetLatestXTime();
		if (s->receive_lsn > s->replay_lsn && latest != 0)
			s->lag_seconds = Max(0.0, (double) (GetCurrentTimestamp() - latest) / 1000000.0);
	}
}

static void
self_json(StringInfo b, const Self *s)
{
	appendStringInfoString(b, "{\"node\":");
	json_str(b, s->name);
	appendStringInfo(b, ",\"role\":\"%s\",\"term\":" UINT64_FORMAT ",\"acknowledges_commits\":%s,"
					 "\"fenced\":%s,\"paused\":%s",
					 s->in_recovery ? "standby" : "primary", s->term,
					 s->acknowledges ? "true" : "false", s->fenced ? "true" : "false",
					 s->paused ? "true" : "false");
	if (!s->in_recovery)
		appendStringInfo(b, ",\"lease_remaining_ms\":" INT64_FORMAT, s->lease_ms);
	else
	{
		appendStringInfo(b, ",\"streaming\":%s,\"primary\":", s->streaming ? "true" : "false");
		json_str(b, s->primary);
		if (s->lag_bytes >= 0)
			appendStringInfo(b, ",\"lag_bytes\":" INT64_FORMAT, s->lag_bytes);
		appendStringInfo(b, ",\"lag_seconds\":%.3f", s->lag_seconds);
	}
	appendStringInfoString(b, "}\n");
}

/* "lag=N" with an optional kB, MB or GB; -1 if absent, -2 if malformed. */
static int64
parse_lag(const char *query)
{
	const char *p;
	char	   *end;
	int64		n;

	if (query == NULL)
		return -1;
	for (p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
		if (strncmp(p, "lag=", 4) == 0)
			break;
	if (p == NULL || *p == '\0')
		return -1;
	p += 4;
	if (!isdigit((unsigned char) *p))
		return -2;
	errno = 0;
	n = strtoll(p, &end, 10);
	if (errno != 0 || n < 0)
		return -2;
	{
		int64		unit = 1;

		if (strncmp(end, "kB", 2) == 0)
			unit = 1024, end += 2;
		else if (strncmp(end, "MB", 2) == 0)
			unit = 1024 * 1024, end += 2;
		else if (strncmp(end, "GB", 2) == 0)
			unit = INT64CONST(1024) * 1024 * 1024, end += 2;
		if ((*end != '\0' && *end != '&') || n > PG_INT64_MAX / unit)
			return -2;
		return n * unit;
	}
}

/*
 * rk_status() as a JSON array, or NULL with `error` set.  Under a lock
 * timeout and a statement timeout, so that a lock on the registry (an
 * ALTER EXTENSION, a VACUUM FULL, a replayed lock on a standby) holds the
 * loop up for RK_HTTP_STATUS_TIMEOUT_MS at most; and the answer is kept
 * for RK_HTTP_STATUS_CACHE_MS, so that a client asking without pause
 * cannot make the loop spend its time here.
 */
static const char *
status_json(char *error, size_t errlen)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *result = NULL;
	char		ms[16];

	if (status_cache != NULL && rk_monotonic_ms() - status_cached_at < RK_HTTP_STATUS_CACHE_MS)
		return status_cache;
	snprintf(ms, sizeof(ms), "%d", RK_HTTP_STATUS_TIMEOUT_MS);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		(void) set_config_option("lock_timeout", ms, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		enable_timeout_after(STATEMENT_TIMEOUT, RK_HTTP_STATUS_TIMEOUT_MS);
		if (!OidIsValid(get_extension_oid(RK_EXTENSION_NAME, true)))
			snprintf(error, errlen, "the extension is not created in database %s", rk_database);
		else
		{
			SPI_connect();
			if (SPI_execute(psprintf("SELECT coalesce(pg_catalog.json_agg(s), '[]')::text FROM %s.rk_status() s",
									 quote_identifier(rk_schema())), true, 1) == SPI_OK_SELECT &&
				SPI_processed == 1)
			{
				char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

				result = MemoryContextStrdup(TopMemoryContext, v ? v : "[]");
			}
			else
				snprintf(error, errlen, "rk_status() failed");
			SPI_finish();
		}
		disable_timeout(STATEMENT_TIMEOUT, false);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		snprintf(error, errlen, "%s", ed->message);
		FreeErrorData(ed);
		result = NULL;
	}
	PG_END_TRY();
	QueryCancelPending = false; /* a timeout that fired late must not end the loop */
	MemoryContextSwitchTo(cxt);
	if (result != NULL)
	{
		if (status_cache)
			pfree(status_cache);
		status_cache = result;
		status_cached_at = rk_monotonic_ms();
	}
	return result;
}

static void
metric(StringInfo b, const char *name, const char *type, const char *help, const char *fmt,...)
pg_attribute_printf(5, 6);

static void
metric(StringInfo b, const char *name, const char *type, const char *help, const char *fmt,...)
{
	va_list		ap;

	appendStringInfo(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (;;)
	{
		int			needed;

		va_start(ap, fmt);
		needed = appendStringInfoVA(b, fmt, ap);
		va_end(ap);
		if (needed == 0)
			break;
		enlargeStringInfo(b, needed);
	}
}

static void
metrics_text(StringInfo b, const Self *s)
{
	metric(b, "replication_kit_up", "gauge", "The server and its HTTP endpoint answer.", "replication_kit_up 1\n");
	metric(b, "replication_kit_worker_running", "gauge", "The replication_kit worker runs.",
		   "replication_kit_worker_running %d\n", s->worker_running);
	metric(b, "replication_kit_role", "gauge", "1 for the role this node has now.",
		   "replication_kit_role{role=\"primary\"} %d\nreplication_kit_role{role=\"standby\"} %d\n",
		   !s->in_recovery, s->in_recovery);
	metric(b, "replication_kit_acknowledges_commits", "gauge",
		   "1 on a primary that holds its lease and is not fenced.",
		   "replication_kit_acknowledges_commits %d\n", s->acknowledges);
	metric(b, "replication_kit_fenced", "gauge", "1 on a primary that is fenced.",
		   "replication_kit_fenced %d\n", s->fenced);
	metric(b, "replication_kit_paused", "gauge", "1 while the cluster is paused here (rk_pause).",
		   "replication_kit_paused %d\n", s->paused);
	metric(b, "replication_kit_term", "gauge", "The highest term this node has seen.",
		   "replication_kit_term " UINT64_FORMAT "\n", s->term);
	metric(b, "replication_kit_lease_remaining_seconds", "gauge",
		   "How long the primary's lease still runs (0 on a standby, or in a cluster of one).",
		   "replication_kit_lease_remaining_seconds %.3f\n", s->lease_ms / 1000.0);
	metric(b, "replication_kit_lag_bytes", "gauge",
		   "A standby's replay position behind the primary's last flushed position it knows (0 on the primary, -1 unknown).",
		   "replication_kit_lag_bytes " INT64_FORMAT "\n", s->in_recovery ? s->lag_bytes : 0);
	metric(b, "replication_kit_lag_seconds", "gauge",
		   "Age of the last transaction a standby replayed while it has more WAL to replay (0 caught up or primary).",
		   "replication_kit_lag_seconds %.3f\n", s->lag_seconds);
	metric(b, "replication_kit_streaming", "gauge", "1 on a standby whose WAL receiver streams.",
		   "replication_kit_streaming %d\n", s->streaming);
	metric(b, "replication_kit_failovers_total", "counter",
		   "Promotions of this node after a won election, since the server started.",
		   "replication_kit_failovers_total " UINT64_FORMAT "\n",
		   pg_atomic_read_u64(&rk_shared->n_promotions));
	metric(b, "replication_kit_elections_total", "counter", "Elections this node ran, since the server started.",
		   "replication_kit_elections_total " UINT64_FORMAT "\n", pg_atomic_read_u64(&rk_shared->n_elections));
	metric(b, "replication_kit_votes_total", "counter", "Votes this node granted, since the server started.",
		   "replication_kit_votes_total " UINT64_FORMAT "\n", pg_atomic_read_u64(&rk_shared->n_votes));
	metric(b, "replication_kit_probe_errors_total", "counter",
		   "Probes of another node that got no valid answer, since the server started.",
		   "replication_kit_probe_errors_total " UINT64_FORMAT "\n",
		   pg_atomic_read_u64(&rk_shared->n_probe_errors));

	appendStringInfoString(b, "# HELP replication_kit_peer_reachable 1 if this node's worker reached the other node in its last probe.\n"
						   "# TYPE replication_kit_peer_reachable gauge\n");
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	for (int i = 0; i < rk_shared->npeers; i++)
	{
		RkPeer	   *p = &rk_shared->peers[i];

		if (p->is_self)
			continue;
		/* Registered names are [a-z_][a-z0-9_]*; escaped all the same. */
		appendStringInfoString(b, "replication_kit_peer_reachable{node=\"");
		for (const char *ch = p->name; *ch; ch++)
		{
			if (*ch == '\\' || *ch == '"')
				appendStringInfoChar(b, '\\');
			if (*ch == '\n')
				appendStringInfoString(b, "\\n");
			else
				appendStringInfoChar(b, *ch);
		}
		appendStringInfo(b, "\"} %d\n", p->reachable);
	}
	LWLockRelease(rk_shared->lock);
}

/* A whole request head is in: answer it. */
static void
handle(HttpConn *c)
{
	char	   *line = c->head;
	char	   *eol = strstr(line, "\r\n");
	char	   *method,
			   *target,
			   *version,
			   *query,
			   *save;
	bool		head_only;
	Self		s;
	StringInfoData b;

	*eol = '\0';
	method = strtok_r(line, " ", &save);
	target = method ? strtok_r(NULL, " ", &save) : NULL;
	version = target ? strtok_r(NULL, " ", &save) : NULL;
	if (version == NULL || strtok_r(NULL, " ", &save) != NULL || strncmp(version, "HTTP/1.", 7) != 0 ||
		target[0] != '/')
	{
		respond(c, 400, "text/plain", "bad request\n", false);
		return;
	}
	head_only = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !head_only)
	{
		respond(c, 405, "text/plain", "only GET and HEAD: this endpoint changes nothing\n", false);
		return;
	}
	query = strchr(target, '?');
	if (query)
		*query++ = '\0';

	read_self(&s);
	initStringInfo(&b);
	self_json(&b, &s);
	if (strcmp(target, "/primary") == 0)
		respond(c, s.acknowledges ? 200 : 503, "application/json", b.data, head_only);
	else if (strcmp(target, "/standby") == 0 || strcmp(target, "/replica") == 0)
	{
		int64		lag = parse_lag(query);

		if (lag == -2)
			respond(c, 400, "text/plain", "lag must be a number of bytes, optionally with kB, MB or GB\n", head_only);
		else
			respond(c, s.in_recovery && s.streaming && (lag < 0 || (s.lag_bytes >= 0 && s.lag_bytes <= lag))
					? 200 : 503, "application/json", b.data, head_only);
	}
	else if (strcmp(target, "/health") == 0)
		respond(c, s.worker_running ? 200 : 503, "application/json", b.data, head_only);
	else if (strcmp(target, "/status") == 0)
	{
		char		error[256] = "";
		const char *json = status_json(error, sizeof(error));

		if (json)
		{
			resetStringInfo(&b);
			appendStringInfo(&b, "%s\n", json);
			respond(c, 200, "application/json", b.data, head_only);
		}
		else
		{
			resetStringInfo(&b);
			appendStringInfo(&b, "rk_status() is not available: %s\n", error);
			respond(c, 503, "text/plain", b.data, head_only);
		}
	}
	else if (strcmp(target, "/metrics") == 0)
	{
		resetStringInfo(&b);
		metrics_text(&b, &s);
		respond(c, 200, "text/plain; version=0.0.4", b.data, head_only);
	}
	else
		respond(c, 404, "text/plain", "unknown path: /primary, /standby, /health, /status or /metrics\n", head_only);
	pfree(b.data);
}

/*
 * Take new connections, at most RK_HTTP_ACCEPT_BURST per loop.  When every
 * slot is taken, the oldest connection that has not sent its whole
 * request yet makes room: idle connections cannot lock out a load
 * balancer's check, which sends its request at once.
 */
static void
accept_all(void)
{
	for (int n = 0; n < RK_HTTP_ACCEPT_BURST; n++)
	{
		int			fd = accept(listen_fd, NULL, NULL);
		int			slot = -1;
		int			oldest = -1;

		if (fd < 0)
			return;
		/* accept4() is a GNU extension: the flags one at a time, portably. */
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
			fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		{
			close(fd);
			continue;
		}
		for (int i = 0; i < RK_HTTP_MAX_CONN; i++)
		{
			if (conns[i].fd < 0)
			{
				slot = i;
				break;
			}
			if (!conns[i].answering && (oldest < 0 || conns[i].accepted < conns[oldest].accepted))
				oldest = i;
		}
		if (slot < 0 && oldest >= 0)
		{
			close_conn(&conns[oldest]);
			slot = oldest;
		}
		if (slot < 0)
		{
			close(fd);			/* every slot is answering: gone within 2 s */
			continue;
		}
		conns[slot].fd = fd;
		conns[slot].accepted = rk_monotonic_ms();
	}
}

static void
read_some(HttpConn *c)
{
	ssize_t		n;

	if (c->draining)
	{
		char		sink[512];

		/* What a client still sends after the answer: read and dropped until it closes. */
		n = recv(c->fd, sink, sizeof(sink), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			close_conn(c);
		return;
	}
	n = recv(c->fd, c->head + c->headlen, RK_HTTP_HEAD_MAX - c->headlen, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
	{
		close_conn(c);
		return;
	}
	if (n < 0)
		return;
	c->headlen += (int) n;
	c->head[c->headlen] = '\0';
	if (memchr(c->head, '\0', c->headlen) != NULL)
		respond(c, 400, "text/plain", "bad request\n", false);
	else if (strstr(c->head, "\r\n\r\n") != NULL)
		handle(c);
	else if (c->headlen >= RK_HTTP_HEAD_MAX)
		respond(c, 431, "text/plain", "request head too large\n", false);
}

/*
 * Send what is left of the answer.  Once it is out, the sending side is
 * shut and the connection drained until the client closes it (closing a
 * socket with unread input would reset it, and the client could lose the
 * answer).
 */
static void
write_some(HttpConn *c)
{
	ssize_t		n = send(c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0)
	{
		close_conn(c);
		return;
	}
	c->sent += (int) n;
	if (c->sent >= c->out.len)
	{
		shutdown(c->fd, SHUT_WR);
		c->answering = false;
		c->draining = true;
	}
}

/* An error in the loop: logged, the connections dropped, and the loop goes on. */
static void
recover_from_error(void)
{
	error_context_stack = NULL;
	HOLD_INTERRUPTS();
	disable_all_timeouts(false);
	QueryCancelPending = false;
	EmitErrorReport();
	AbortOutOfAnyTransaction();
	LWLockReleaseAll();
	MemoryContextSwitchTo(TopMemoryContext);
	FlushErrorState();
	for (int i = 0; i < RK_HTTP_MAX_CONN; i++)
		if (conns[i].fd >= 0)
			close_conn(&conns[i]);
	MemoryContextReset(request_cxt);
	RESUME_INTERRUPTS();
	pg_usleep(100 * 1000L);
}

void
rk_http_main(Datum main_arg)
{
	static int64 next_bind = 0;	/* kept across an error's longjmp */
	sigjmp_buf	local_sigjmp_buf;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(rk_database, NULL, 0);
	pgstat_report_appname("replication_kit http");
	for (int i = 0; i < RK_HTTP_MAX_CONN; i++)
	{
		memset(&conns[i], 0, sizeof(conns[i]));
		conns[i].fd = -1;
	}
	request_cxt = AllocSetContextCreate(TopMemoryContext, "replication_kit http request",
										ALLOCSET_DEFAULT_SIZES);

	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
		recover_from_error();
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		struct pollfd fds[RK_HTTP_MAX_CONN + 1];
		int			idx[RK_HTTP_MAX_CONN + 1];
		int			n = 0;
		int64		now;

		MemoryContextReset(request_cxt);
		MemoryContextSwitchTo(request_cxt);
		/* A cancel (pg_cancel_backend, a timeout that fired late) is no reason to stop serving. */
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		now = rk_monotonic_ms();
		if (listen_fd < 0 && now >= next_bind && !open_listener())
			next_bind = now + RK_HTTP_RETRY_MS;

		if (listen_fd >= 0)
		{
			fds[n].fd = listen_fd;
			fds[n].events = POLLIN;
			idx[n++] = -1;
		}
		for (int i = 0; i < RK_HTTP_MAX_CONN; i++)
		{
			HttpConn   *c = &conns[i];

			if (c->fd < 0)
				continue;
			if (now - c->accepted >= RK_HTTP_DEADLINE_MS ||
				(!c->answering && !c->draining && now - c->accepted >= RK_HTTP_HEAD_MS))
			{
				/* Too slow: a client that dribbles its request, or never reads the answer. */
				if (!c->answering && !c->draining)
				{
					static const char late[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

					(void) send(c->fd, late, sizeof(late) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
				}
				close_conn(c);
				continue;
			}
			fds[n].fd = c->fd;
			fds[n].events = c->answering ? POLLOUT : POLLIN;
			idx[n++] = i;
		}

		if (poll(fds, n, 100) < 0)
		{
			if (errno == EINTR)
				continue;
			elog(ERROR, "poll() failed in the HTTP endpoint: %m");
		}

		for (int k = 0; k < n; k++)
		{
			if (fds[k].revents == 0)
				continue;
			if (idx[k] < 0)
			{
				accept_all();
				continue;
			}
			if (conns[idx[k]].fd < 0)
				continue;
			if (fds[k].revents & (POLLERR | POLLNVAL))
				close_conn(&conns[idx[k]]);
			else if (conns[idx[k]].answering)
				write_some(&conns[idx[k]]);
			else
				read_some(&conns[idx[k]]);
		}
	}
}
