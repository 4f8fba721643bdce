/*
 * committer.c: the client of the failover and switchover benchmarks.
 *
 * Commits one row per transaction, as fast as it can, through a libpq
 * connection string that usually names every node
 * (host=a,b,c port=A,B,C target_session_attrs=read-write), so that libpq
 * finds whichever node accepts writes now.  Every commit the server
 * acknowledged is written to the output file as
 *
 *     id <TAB> epoch seconds with microseconds <TAB> port of the server
 *
 * and every failure to the error file as
 *
 *     epoch seconds <TAB> port or - <TAB> what failed: first line of the error
 *
 * With --returning EXPR the INSERT gets "RETURNING EXPR" and each line goes
 * on with the server's host name and every value returned (tab-separated):
 *
 *     id <TAB> epoch <TAB> port <TAB> host <TAB> value ...
 *
 * which tools/soak uses, since there every node listens on the same port.
 *
 * After any error it drops the connection and connects again.  Nothing
 * waits without a deadline: connecting is bounded by connect_timeout per
 * host (libpq moves on to the next host when it expires), and each
 * statement is sent without blocking and abandoned, with its connection,
 * when no answer comes within --timeout-ms.  A statement_timeout would not
 * do: a commit that waits for a synchronous standby and is cancelled comes
 * back as a success (with a WARNING) although no standby has it.
 *
 * --interval-ms pauses after each acknowledged commit (a gentler load).
 *
 * Stops on SIGTERM or SIGINT, or after --duration seconds.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static volatile sig_atomic_t stop_requested = 0;

static void
on_stop_signal(int signo)
{
	(void) signo;
	stop_requested = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
			"usage: committer --conninfo STRING --out FILE --errors FILE\n"
			"                 [--start-id N (1)] [--duration SECONDS (0: until a signal)]\n"
			"                 [--timeout-ms MS (2000)] [--retry-ms MS (50)]\n"
			"                 [--returning EXPR] [--interval-ms MS (0)]\n");
}

static int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wall-clock time as "seconds.microseconds", the benchmarks' common clock. */
static void
wall_clock(char *buf, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, "%lld.%06ld", (long long) ts.tv_sec, ts.tv_nsec / 1000);
}

/* Sleep that a stop signal cuts short. */
static void
pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	if (!stop_requested)
		nanosleep(&ts, NULL);
}

/* Record one failure: time, port, what failed, the error's first line. */
static void
record_failure(FILE *errors, PGconn *conn, const char *what, const char *msg)
{
	char		now[32];
	const char *port = (conn && PQstatus(conn) != CONNECTION_BAD && PQport(conn)) ? PQport(conn) : "-";
	size_t		n;

	wall_clock(now, sizeof(now));
	if (msg == NULL || *msg == '\0')
		msg = "(no message)";
	n = strcspn(msg, "\n");
	fprintf(errors, "%s\t%s\t%s: ", now, port, what);
	for (size_t i = 0; i < n; i++)
		fputc(msg[i] == '\t' ? ' ' : msg[i], errors);
	fputc('\n', errors);
	fflush(errors);
}

/*
 * Wait until the socket is ready for `events` or the deadline passes.
 * Returns 1 when ready, 0 on timeout, -1 on a stop request or a poll error.
 */
static int
wait_socket(PGconn *conn, short events, int64_t deadline)
{
	struct pollfd pfd = {PQsocket(conn), events, 0};

	for (;;)
	{
		int64_t		left = deadline - monotonic_ms();
		int			rc;

		if (stop_requested)
			return -1;
		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, (int) (left > 1000 ? 1000 : left));
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

typedef enum
{
	COMMIT_OK,					/* acknowledged */
	COMMIT_FAILED,				/* error or timeout; drop the connection */
	COMMIT_STOPPED				/* stop requested while waiting; outcome unknown */
} CommitResult;

/* One INSERT in its own transaction, with a deadline on the whole exchange. */
static CommitResult
commit_one(PGconn *conn, const char *sql, int64_t id, int timeout_ms, FILE *errors,
		   char *returned, size_t returned_len)
{
	char		idbuf[32];
	const char *values[1] = {idbuf};
	int64_t		deadline = monotonic_ms() + timeout_ms;
	CommitResult result = COMMIT_OK;
	PGresult   *res;
	int			flushed;
	bool		got_result = false;

	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	returned[0] = '\0';
	if (!PQsendQueryParams(conn, sql, 1, NULL, values, NULL, NULL, 0))
	{
		record_failure(errors, conn, "send", PQerrorMessage(conn));
		return COMMIT_FAILED;
	}
	while ((flushed = PQflush(conn)) == 1)
	{
		int			w = wait_socket(conn, POLLOUT | POLLIN, deadline);

		if (w < 0)
			return COMMIT_STOPPED;
		if (w == 0)
		{
			record_failure(errors, conn, "timeout", "no answer within the deadline (sending)");
			return COMMIT_FAILED;
		}
		if (!PQconsumeInput(conn))
			break;
	}
	if (flushed < 0)
	{
		record_failure(errors, conn, "send", PQerrorMessage(conn));
		return COMMIT_FAILED;
	}

	for (;;)
	{
		while (PQisBusy(conn))
		{
			int			w = wait_socket(conn, POLLIN, deadline);

			if (w < 0)
				return COMMIT_STOPPED;
			if (w == 0)
			{
				record_failure(errors, conn, "timeout", "no answer within the deadline");
				return COMMIT_FAILED;
			}
			if (!PQconsumeInput(conn))
			{
				record_failure(errors, conn, "query", PQerrorMessage(conn));
				return COMMIT_FAILED;
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		{
			/* The RETURNING values, tab-separated, kept for the log line. */
			size_t		used = 0;

			for (int c = 0; c < PQnfields(res); c++)
			{
				int			n = snprintf(returned + used, returned_len - used, "\t%s",
										 PQgetisnull(res, 0, c) ? "" : PQgetvalue(res, 0, c));

				if (n < 0 || (size_t) n >= returned_len - used)
					break;
				used += n;
			}
		}
		else if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			if (result == COMMIT_OK)
				record_failure(errors, conn, "query", PQresultErrorMessage(res));
			result = COMMIT_FAILED;
		}
		got_result = true;
		PQclear(res);
	}
	if (!got_result && result == COMMIT_OK)
	{
		record_failure(errors, conn, "query", PQerrorMessage(conn));
		result = COMMIT_FAILED;
	}
	return result;
}

int
main(int argc, char **argv)
{
	const char *conninfo = NULL;
	const char *out_path = NULL;
	const char *err_path = NULL;
	const char *returning = NULL;
	char		sql[1024];
	char		returned[512];
	int64_t		next_id = 1;
	double		duration = 0;
	int			timeout_ms = 2000;
	int			retry_ms = 50;
	int			interval_ms = 0;
	FILE	   *out;
	FILE	   *errors;
	PGconn	   *conn = NULL;
	int64_t		end_at;
	int64_t		acked = 0;
	int64_t		failures = 0;
	struct sigaction sa;

	for (int i = 1; i < argc; i++)
	{
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0)
		{
			usage(stdout);
			return 0;
		}
		if (val == NULL)
		{
			usage(stderr);
			return 2;
		}
		if (strcmp(opt, "--conninfo") == 0)
			conninfo = val;
		else if (strcmp(opt, "--out") == 0)
			out_path = val;
		else if (strcmp(opt, "--errors") == 0)
			err_path = val;
		else if (strcmp(opt, "--start-id") == 0)
			next_id = strtoll(val, NULL, 10);
		else if (strcmp(opt, "--duration") == 0)
			duration = strtod(val, NULL);
		else if (strcmp(opt, "--timeout-ms") == 0)
			timeout_ms = atoi(val);
		else if (strcmp(opt, "--retry-ms") == 0)
			retry_ms = atoi(val);
		else if (strcmp(opt, "--returning") == 0)
			returning = val;
		else if (strcmp(opt, "--interval-ms") == 0)
			interval_ms = atoi(val);
		else
		{
			fprintf(stderr, "committer: unknown option %s\n", opt);
			usage(stderr);
			return 2;
		}
		i++;
	}
	if (conninfo == NULL || out_path == NULL || err_path == NULL || timeout_ms <= 0 || retry_ms < 0)
	{
		usage(stderr);
		return 2;
	}
	snprintf(sql, sizeof(sql), "INSERT INTO bench_writes(id, at) VALUES ($1, now())%s%s",
			 returning ? " RETURNING " : "", returning ? returning : "");
	if ((out = fopen(out_path, "a")) == NULL || (errors = fopen(err_path, "a")) == NULL)
	{
		fprintf(stderr, "committer: cannot open %s or %s: %s\n", out_path, err_path, strerror(errno));
		return 1;
	}

	/* No SA_RESTART: a stop signal interrupts poll() and nanosleep(). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	end_at = duration > 0 ? monotonic_ms() + (int64_t) (duration * 1000) : INT64_MAX;
	while (!stop_requested && monotonic_ms() < end_at)
	{
		CommitResult r;

		if (conn == NULL)
		{
			/*
			 * Blocking, but bounded: libpq gives each host connect_timeout
			 * and then tries the next one.  (PQconnectPoll has no such
			 * per-host deadline, so a hung first host would hide the
			 * others.)
			 */
			conn = PQconnectdb(conninfo);
			if (PQstatus(conn) != CONNECTION_OK)
			{
				record_failure(errors, NULL, "connect", PQerrorMessage(conn));
				failures++;
				PQfinish(conn);
				conn = NULL;
				pause_ms(retry_ms);
				continue;
			}
			if (PQsetnonblocking(conn, 1) != 0)
			{
				record_failure(errors, conn, "connect", PQerrorMessage(conn));
				failures++;
				PQfinish(conn);
				conn = NULL;
				pause_ms(retry_ms);
				continue;
			}
		}

		r = commit_one(conn, sql, next_id, timeout_ms, errors, returned, sizeof(returned));
		if (r == COMMIT_STOPPED)
			break;
		if (r == COMMIT_OK)
		{
			char		now[32];

			wall_clock(now, sizeof(now));
			if (returning)
				fprintf(out, "%" PRId64 "\t%s\t%s\t%s%s\n", next_id, now, PQport(conn),
						PQhost(conn), returned);
			else
				fprintf(out, "%" PRId64 "\t%s\t%s\n", next_id, now, PQport(conn));
			fflush(out);
			acked++;
			if (interval_ms > 0)
				pause_ms(interval_ms);
		}
		else
		{
			failures++;
			PQfinish(conn);
			conn = NULL;
			pause_ms(retry_ms);
		}
		/* An id whose outcome is unknown is never used again. */
		next_id++;
	}
	if (conn)
		PQfinish(conn);
	fclose(out);
	fclose(errors);
	fprintf(stderr, "committer: %" PRId64 " commits acknowledged, %" PRId64 " failures, next id %" PRId64 "\n",
			acked, failures, next_id);
	return 0;
}
