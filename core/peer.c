/*-------------------------------------------------------------------------
 *
 * peer.c
 *		Talking to the other nodes: one SQL call to many peers at once, over
 *		libpq, with one hard deadline for the whole round.
 *
 * Every wait is on a WaitEventSet that includes this process's latch and
 * postmaster death, so a worker (or a backend running rk_failover) can be
 * stopped at any moment (the postmaster itself, asking before it accepts
 * connections whether this node was replaced, waits on the sockets only), and a peer that accepts the TCP connection but
 * never answers (a SIGSTOPped postmaster, a hung backend) costs exactly the
 * deadline and is reported unreachable.  Deadlines are on the monotonic
 * clock.  Connections are kept between rounds and dropped after any
 * failure; a fresh one is made next time.  The postmaster keeps none: its
 * children must not inherit a peer's socket.
 *
 * Peers are reached as the kit's node role, with the secret from the password file
 * the kit keeps in PGDATA, on replication_kit.database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "core/clock.h"
#include "core/credentials.h"
#include "core/peer.h"
#include "core/settings.h"

/*
 * Connections kept between rounds, by "host:port".  A slot is busy while a
 * call of the running batch uses it: only a slot that is not busy is ever
 * given to another peer, the least recently used first (the registry may
 * have seen more addresses over time than there are slots).
 */
typedef struct PeerConn
{
	char		key[RK_HOST_LEN + 16];
	PGconn	   *conn;
	uint64		last_used;
	bool		busy;
	uint32		tls_hash;		/* the TLS settings it was made with */
} PeerConn;

static PeerConn conns[RK_MAX_NODES];
static uint64 use_clock = 0;
static bool cleanup_registered = false;

static void
close_all(int code, Datum arg)
{
	for (int i = 0; i < RK_MAX_NODES; i++)
	{
		if (conns[i].conn)
			PQfinish(conns[i].conn);
		conns[i].conn = NULL;
		conns[i].key[0] = '\0';
		conns[i].busy = false;
	}
}

/* The slot of host:port, or NULL if there is none. */
static PeerConn *
find_slot(const char *host, int port)
{
	char		key[RK_HOST_LEN + 16];

	snprintf(key, sizeof(key), "%s:%d", host, port);
	for (int i = 0; i < RK_MAX_NODES; i++)
		if (conns[i].key[0] != '\0' && strcmp(conns[i].key, key) == 0)
			return &conns[i];
	return NULL;
}

/* The slot of host:port, made if needed; it is busy until the batch ends. */
static PeerConn *
conn_slot(const char *host, int port)
{
	PeerConn   *slot = find_slot(host, port);

	if (slot == NULL)
	{
		for (int i = 0; i < RK_MAX_NODES; i++)
		{
			PeerConn   *pc = &conns[i];

			if (pc->busy)
				continue;
			if (slot == NULL || pc->key[0] == '\0' ||
				(slot->key[0] != '\0' && pc->last_used < slot->last_used))
				slot = pc;
			if (pc->key[0] == '\0')
				break;
		}
		if (slot == NULL)
			elog(ERROR, RK_LOG_PREFIX "more concurrent peer calls than connection slots");
		if (slot->conn)
			PQfinish(slot->conn);
		slot->conn = NULL;
		snprintf(slot->key, sizeof(slot->key), "%s:%d", host, port);
	}
	slot->last_used = ++use_clock;
	slot->busy = true;
	return slot;
}

/* The batch is over: every slot may serve another peer again. */
static void
release_slots(void)
{
	for (int i = 0; i < RK_MAX_NODES; i++)
		conns[i].busy = false;
}

static void
drop_conn(RkCall *c)
{
	PeerConn   *pc = find_slot(c->host, c->port);

	if (pc && pc->conn)
		PQfinish(pc->conn);
	if (pc)
		pc->conn = NULL;
	c->conn = NULL;
}

static void
fail(RkCall *c, const char *what, PGconn *conn)
{
	char	   *msg = conn ? PQerrorMessage(conn) : NULL;
	size_t		len;

	snprintf(c->error, sizeof(c->error), "%s%s%s", what, msg && *msg ? ": " : "", msg ? msg : "");
	len = strlen(c->error);
	while (len > 0 && (c->error[len - 1] == '\n' || c->error[len - 1] == ' '))
		c->error[--len] = '\0';
	for (char *p = c->error; *p; p++)
		if (*p == '\n')
			*p = ' ';
	c->phase = RK_CALL_FAILED;
	drop_conn(c);
}

static void
ignore_notice(void *arg, const char *message)
{
}

/* The TLS settings now, as a number: a connection made under others is not reused. */
static uint32
tls_settings_hash(void)
{
	char	   *s = psprintf("%s|%s|%s|%s", rk_tls_sslmode(), rk_sslrootcert ? rk_sslrootcert : "",
							 rk_tls_channel_binding(true), rk_tls_channel_binding(false));
	uint32		h = hash_bytes((const unsigned char *) s, strlen(s));

	pfree(s);
	return h;
}

/* Start (or reuse) the connection and send the query; no waiting here. */
static void
call_start(RkCall *c)
{
	PeerConn   *pc = conn_slot(c->host, c->port);
	char		portstr[16];
	char		timeout[16];
	char		passfile[MAXPGPATH];
	char		appname[NAMEDATALEN + 32];
	char	   *password;
	char		options[64];
	const char *keys[14];
	const char *vals[14];
	int			n = 0;

	c->res = NULL;
	c->error[0] = '\0';
	c->sqlstate[0] = '\0';
	/*
	 * Reused only as the same user (a clone calls as the node role once it
	 * has its secret) and under the same TLS settings (a new CA applies at
	 * once).
	 */
	if (pc->conn && PQstatus(pc->conn) == CONNECTION_OK && PQtransactionStatus(pc->conn) == PQTRANS_IDLE &&
		strcmp(PQuser(pc->conn), c->user) == 0 && pc->tls_hash == tls_settings_hash())
	{
		c->conn = pc->conn;
		c->phase = RK_CALL_SENDING;
		return;
	}
	if (pc->conn)
		PQfinish(pc->conn);
	pc->conn = NULL;

	snprintf(portstr, sizeof(portstr), "%d", c->port);
	snprintf(timeout, sizeof(timeout), "%d", RK_PEER_CONNECT_TIMEOUT_S);
	snprintf(passfile, sizeof(passfile), "%s/%s", DataDir, RK_PASS_FILE);
	password = rk_peer_password(c->user);
	snprintf(options, sizeof(options), "-c replication_kit.peer_system_identifier=%s", rk_system_identifier());
	snprintf(appname, sizeof(appname), "replication_kit %s", c->self_name ? c->self_name : "");
	keys[n] = "host"; vals[n++] = c->host;
	keys[n] = "port"; vals[n++] = portstr;
	keys[n] = "dbname"; vals[n++] = rk_database;
	keys[n] = "user"; vals[n++] = c->user;
	keys[n] = "passfile"; vals[n++] = passfile;
	if (password != NULL)
	{
		keys[n] = "password";
		vals[n++] = password;
	}
	keys[n] = "application_name"; vals[n++] = appname;
	keys[n] = "connect_timeout"; vals[n++] = timeout;	/* a backstop; the call's deadline rules */
	keys[n] = "keepalives_idle"; vals[n++] = "5";
	keys[n] = "sslmode"; vals[n++] = rk_tls_sslmode();
	keys[n] = "channel_binding"; vals[n++] = rk_tls_channel_binding(strcmp(c->user, RK_NODE_ROLE) == 0);
	if (rk_sslrootcert != NULL && rk_sslrootcert[0] != '\0')
	{
		keys[n] = "sslrootcert";
		vals[n++] = rk_sslrootcert;
	}
	/* Only to the node role: a node with an older library would refuse the setting. */
	if (strcmp(c->user, RK_NODE_ROLE) == 0)
	{
		keys[n] = "options";
		vals[n++] = options;
	}
	keys[n] = NULL; vals[n] = NULL;
	Assert(n < lengthof(keys));

	pc->conn = PQconnectStartParams(keys, vals, 0);
	pc->tls_hash = tls_settings_hash();
	if (password != NULL)
	{
		memset(password, 0, strlen(password));
		pfree(password);
	}
	c->conn = pc->conn;
	/* A peer's notices (say, "terminating connection") are not ours to log. */
	if (c->conn)
		PQsetNoticeProcessor(c->conn, ignore_notice, NULL);
	if (c->conn == NULL || PQstatus(c->conn) == CONNECTION_BAD)
	{
		fail(c, "could not connect", c->conn);
		return;
	}
	c->phase = RK_CALL_CONNECTING;
	c->poll = PGRES_POLLING_WRITING;
}

/* Advance one call as far as it goes without blocking. */
static void
call_step(RkCall *c)
{
	for (;;)
	{
		switch (c->phase)
		{
			case RK_CALL_CONNECTING:
				c->poll = PQconnectPoll(c->conn);
				if (c->poll == PGRES_POLLING_FAILED)
				{
					fail(c, "could not connect", c->conn);
					return;
				}
				if (c->poll != PGRES_POLLING_OK)
					return;		/* wait for the socket */
				PQsetnonblocking(c->conn, 1);
				c->phase = RK_CALL_SENDING;
				break;

			case RK_CALL_SENDING:
				if (!PQsendQueryParams(c->conn, c->query, c->nparams, NULL, c->params, NULL, NULL, 0))
				{
					fail(c, "could not send", c->conn);
					return;
				}
				c->phase = RK_CALL_FLUSHING;
				break;

			case RK_CALL_FLUSHING:
				{
					int			r = PQflush(c->conn);

					if (r < 0)
					{
						fail(c, "could not send", c->conn);
						return;
					}
					if (r > 0)
						return;	/* wait for writable */
					c->phase = RK_CALL_READING;
					break;
				}

			case RK_CALL_READING:
				if (!PQconsumeInput(c->conn))
				{
					fail(c, "connection lost", c->conn);
					return;
				}
				while (!PQisBusy(c->conn))
				{
					PGresult   *r = PQgetResult(c->conn);

					if (r == NULL)
					{
						if (c->res == NULL)
						{
							fail(c, "no result", c->conn);
							return;
						}
						if (PQresultStatus(c->res) != PGRES_TUPLES_OK &&
							PQresultStatus(c->res) != PGRES_COMMAND_OK)
						{
							const char *msg = PQresultErrorField(c->res, PG_DIAG_MESSAGE_PRIMARY);
							const char *code = PQresultErrorField(c->res, PG_DIAG_SQLSTATE);

							snprintf(c->error, sizeof(c->error), "%s", msg ? msg : "query failed");
							if (code && strlen(code) == 5)
								strlcpy(c->sqlstate, code, sizeof(c->sqlstate));
							PQclear(c->res);
							c->res = NULL;
							c->phase = RK_CALL_FAILED;
							return;
						}
						c->phase = RK_CALL_DONE;
						return;
					}
					if (c->res)
						PQclear(c->res);
					c->res = r;
				}
				return;			/* wait for readable */

			case RK_CALL_DONE:
			case RK_CALL_FAILED:
			case RK_CALL_IDLE:
				return;
		}
	}
}

static uint32
call_wait_events(RkCall *c)
{
	switch (c->phase)
	{
		case RK_CALL_CONNECTING:
			return c->poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
		case RK_CALL_FLUSHING:
			return WL_SOCKET_WRITEABLE;
		case RK_CALL_READING:
			return WL_SOCKET_READABLE;
		default:
			return 0;
	}
}

/*
 * Run every call in `calls` concurrently, for at most timeout_ms.  Each call
 * ends DONE (c->res holds the result, which the caller frees with
 * rk_calls_clear) or FAILED (c->error says why).  Interruptible throughout.
 */
static void calls_run(RkCall *calls, int ncalls, int timeout_ms,
					  RkCallAnswered answered, void *arg);

void
rk_calls_run(RkCall *calls, int ncalls, int timeout_ms)
{
	rk_calls_run_notify(calls, ncalls, timeout_ms, NULL, NULL);
}

/* The same, calling `answered` for each call as soon as its answer is in. */
void
rk_calls_run_notify(RkCall *calls, int ncalls, int timeout_ms, RkCallAnswered answered, void *arg)
{
	/*
	 * An error (a cancel, say) in the middle leaves connections with half
	 * an exchange on them: drop them, as postgres_fdw does.
	 */
	PG_TRY();
	{
		calls_run(calls, ncalls, timeout_ms, answered, arg);
		release_slots();
	}
	PG_CATCH();
	{
		release_slots();
		for (int i = 0; i < ncalls; i++)
		{
			if (calls[i].phase != RK_CALL_DONE && calls[i].phase != RK_CALL_FAILED &&
				calls[i].phase != RK_CALL_IDLE)
				drop_conn(&calls[i]);
			if (calls[i].res)
				PQclear(calls[i].res);
			calls[i].res = NULL;
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
}

static void
calls_run(RkCall *calls, int ncalls, int timeout_ms, RkCallAnswered answered, void *arg)
{
	int64		deadline = rk_monotonic_ms() + timeout_ms;
	bool		postmaster = !IsUnderPostmaster;

	if (!cleanup_registered && !postmaster)
	{
		before_shmem_exit(close_all, (Datum) 0);
		cleanup_registered = true;
	}

	for (int i = 0; i < ncalls; i++)
	{
		if (calls[i].phase != RK_CALL_IDLE)
			continue;
		call_start(&calls[i]);
		call_step(&calls[i]);
		if (answered && calls[i].phase == RK_CALL_DONE)
			answered(&calls[i], arg);
	}

	for (;;)
	{
		WaitEventSet *set;
		WaitEvent	events[RK_MAX_NODES + 2];
		int			pending = 0;
		long		remaining;
		int			nev;

		for (int i = 0; i < ncalls; i++)
			if (calls[i].phase != RK_CALL_DONE && calls[i].phase != RK_CALL_FAILED)
				pending++;
		if (pending == 0)
			return;

		remaining = (long) (deadline - rk_monotonic_ms());
		if (remaining <= 0)
		{
			for (int i = 0; i < ncalls; i++)
			{
				RkCall	   *c = &calls[i];

				if (c->phase == RK_CALL_DONE || c->phase == RK_CALL_FAILED)
					continue;
				if (c->phase == RK_CALL_CONNECTING)
					snprintf(c->error, sizeof(c->error), "no connection within %d ms", timeout_ms);
				else
					snprintf(c->error, sizeof(c->error), "no answer within %d ms", timeout_ms);
				if (c->res)
					PQclear(c->res);
				c->res = NULL;
				c->phase = RK_CALL_FAILED;
				/* A half-done exchange leaves the connection unusable. */
				drop_conn(c);
			}
			return;
		}

		set = rk_create_wait_event_set(pending + 2);
		if (!postmaster)
		{
			AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
			AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		}
		for (int i = 0; i < ncalls; i++)
		{
			uint32		ev = call_wait_events(&calls[i]);

			if (ev != 0 && PQsocket(calls[i].conn) >= 0)
				AddWaitEventToSet(set, ev, PQsocket(calls[i].conn), NULL, &calls[i]);
		}
		nev = WaitEventSetWait(set, remaining, events, lengthof(events), PG_WAIT_EXTENSION);
		FreeWaitEventSet(set);

		for (int e = 0; e < nev; e++)
		{
			if (events[e].events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			else if (events[e].user_data)
			{
				RkCall	   *c = (RkCall *) events[e].user_data;

				call_step(c);
				if (answered && c->phase == RK_CALL_DONE)
					answered(c, arg);
			}
		}
	}
}

/* Prepare a call to the node at host:port. */
void
rk_call_init(RkCall *c, const char *host, int port, const char *user, const char *self_name,
			 const char *query, int nparams, const char *const *params)
{
	memset(c, 0, sizeof(RkCall));
	strlcpy(c->host, host, sizeof(c->host));
	c->port = port;
	c->user = user;
	c->self_name = self_name;
	c->query = query;
	c->nparams = nparams;
	c->params = params;
	c->phase = RK_CALL_IDLE;
}

void
rk_calls_clear(RkCall *calls, int ncalls)
{
	for (int i = 0; i < ncalls; i++)
	{
		if (calls[i].res)
			PQclear(calls[i].res);
		calls[i].res = NULL;
	}
}

/* A result column by name, or NULL (also for SQL NULL). */
const char *
rk_call_value(RkCall *c, const char *column)
{
	int			col;

	if (c->phase != RK_CALL_DONE || c->res == NULL || PQntuples(c->res) < 1)
		return NULL;
	col = PQfnumber(c->res, column);
	if (col < 0 || PQgetisnull(c->res, 0, col))
		return NULL;
	return PQgetvalue(c->res, 0, col);
}

/* Forget all connections, e.g. after the registry changed hands. */
void
rk_calls_disconnect_all(void)
{
	close_all(0, (Datum) 0);
}

/*
 * Close the kept connections to every address not in `keep` (the
 * registry's, "host:port"): a removed node or a changed address holds no
 * connection, and no slot, beyond the round that noticed.  Never one a
 * running batch uses (there is none between rounds).
 */
void
rk_calls_forget_others(const char *const *keep, int nkeep)
{
	for (int i = 0; i < RK_MAX_NODES; i++)
	{
		bool		kept = false;

		if (conns[i].key[0] == '\0' || conns[i].busy)
			continue;
		for (int k = 0; k < nkeep && !kept; k++)
			kept = strcmp(conns[i].key, keep[k]) == 0;
		if (kept)
			continue;
		if (conns[i].conn)
			PQfinish(conns[i].conn);
		conns[i].conn = NULL;
		conns[i].key[0] = '\0';
	}
}

/*
 * Report a failed call at `elevel`, the way postgres_fdw reports a remote
 * error: an ERROR the peer raised keeps its SQLSTATE and message; a call
 * that never got an answer is a connection failure.
 */
void
rk_call_report(RkCall *c, int elevel, const char *what)
{
	if (c->sqlstate[0] != '\0')
		ereport(elevel,
				(errcode(MAKE_SQLSTATE(c->sqlstate[0], c->sqlstate[1], c->sqlstate[2],
									   c->sqlstate[3], c->sqlstate[4])),
				 errmsg("%s", what),
				 errdetail("The node at %s:%d answered: %s", c->host, c->port, c->error)));
	else
		ereport(elevel,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s", what),
				 errdetail("%s", c->error[0] ? c->error : "no answer")));
}
