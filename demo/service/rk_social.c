/*
 * rk_social.c
 *		The walkthrough's "social network" service: POST /user/register writes
 *		a user on the primary, GET /user/{id} reads one from the standbys, and
 *		GET /health says what the service can reach right now.
 *
 * It exists to show what replication_kit gives an application: no resolver
 * library and no restart after a failover.  Writes go through a libpq
 * multi-host string with target_session_attrs=read-write, reads through one
 * with target_session_attrs=prefer-standby whose host list is rotated per pool
 * member; after any failure the next request reconnects from the same string
 * and lands on whichever node is the primary (or a standby) by then.  While no
 * primary is reachable, writes answer 503 with a short reason and reads keep
 * working.
 *
 * HTTP is libmicrohttpd with one thread per client connection; each libpq
 * connection is held by one thread at a time (db.c).  Request bodies are
 * capped at 64 KiB: a larger Content-Length is refused before the body is
 * read; a chunked body is answered 413 as soon as it grows past the cap, and
 * the connection closed (refuse_chunked_body).
 */
#include <getopt.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "db.h"
#include "json.h"
#include "log.h"
#include "password.h"

#define MAX_BODY (64 * 1024)
#define DRAIN_MS 2000			/* after a 413 mid-body: what the client still sends, dropped */
#define DRAIN_LIMIT (16 * 1024 * 1024)
#define DEFAULT_POOL 4
#define MAX_POOL 64
#define DEFAULT_QUERY_TIMEOUT_MS 5000

/* Per-request state, kept in MHD's con_cls between callback calls. */
typedef struct request
{
	strbuf		body;
} request;

static db_pool write_pool;
static db_pool read_pool;

static const char *const register_sql =
"INSERT INTO users (first_name, second_name, birthdate, biography, city, password_hash) "
"VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";

static const char *const get_sql =
"SELECT id, first_name, second_name, to_char(birthdate, 'YYYY-MM-DD'), biography, city "
"FROM users WHERE id = $1";

static const char *const schema_sql =
"CREATE TABLE IF NOT EXISTS users ("
" id bigserial PRIMARY KEY,"
" first_name text NOT NULL,"
" second_name text NOT NULL,"
" birthdate date NOT NULL,"
" biography text,"
" city text,"
" password_hash text NOT NULL)";

/* A printable, bounded copy of a URL for the log. */
static void
safe_url(const char *url, char *out, size_t outlen)
{
	size_t		i = 0;

	for (; url[i] && i + 1 < outlen; i++)
	{
		unsigned char c = (unsigned char) url[i];

		out[i] = (c >= 0x20 && c < 0x7F) ? (char) c : '?';
	}
	out[i] = '\0';
}

/* Queue body as a JSON response; takes ownership of body's memory. */
static enum MHD_Result
send_json(struct MHD_Connection *mc, unsigned int status, strbuf *body,
		  const char *allow, const char *backend)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (body->oom)
	{
		static char oom[] = "{\"error\": \"out of memory\"}";

		sb_free(body);
		resp = MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	else
	{
		resp = MHD_create_response_from_buffer(body->len, body->data,
											   MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			sb_free(body);
		body->data = NULL;
		body->len = body->cap = 0;
	}
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (backend && backend[0])
		MHD_add_response_header(resp, "X-RK-Backend", backend);
	/* The rest of an oversize body is never read: the connection cannot be reused. */
	if (status == MHD_HTTP_CONTENT_TOO_LARGE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(mc, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/*
 * Answer {"error": reason} with status, and log one line about it; detail
 * (what libpq said, never shown to the client) goes into that line.
 */
static enum MHD_Result
send_error_detail(struct MHD_Connection *mc, unsigned int status, const char *reason,
				  const char *method, const char *url, const char *allow,
				  const char *detail)
{
	strbuf		sb = {0};
	char		u[160];

	safe_url(url, u, sizeof(u));
	if (detail && detail[0])
		rk_log("error", "%s %s -> %u %s (%s)", method, u, status, reason, detail);
	else
		rk_log("error", "%s %s -> %u %s", method, u, status, reason);
	sb_puts(&sb, "{\"error\": ");
	sb_json_string(&sb, reason);
	sb_puts(&sb, "}");
	return send_json(mc, status, &sb, allow, NULL);
}

static enum MHD_Result
send_error(struct MHD_Connection *mc, unsigned int status, const char *reason,
		   const char *method, const char *url, const char *allow)
{
	return send_error_detail(mc, status, reason, method, url, allow, NULL);
}

static unsigned int
status_for(db_kind kind)
{
	switch (kind)
	{
		case DB_OK:
			return MHD_HTTP_OK;
		case DB_UNAVAILABLE:
			return MHD_HTTP_SERVICE_UNAVAILABLE;
		case DB_BAD_INPUT:
			return MHD_HTTP_BAD_REQUEST;
		case DB_FAILED:
			break;
	}
	return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* YYYY-MM-DD naming a real calendar day, year 0001 to 9999. */
static bool
valid_date(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			y,
				m,
				d,
				dim;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return false;
	dim = mdays[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		dim = 29;
	return d <= dim;
}

/* A positive bigint written as plain decimal digits. */
static bool
parse_id(const char *s, long long *out)
{
	size_t		n = strlen(s);
	char	   *end;
	unsigned long long v;

	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v == 0 || v > (unsigned long long) LLONG_MAX)
		return false;
	*out = (long long) v;
	return true;
}

static bool
blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

static enum MHD_Result
handle_register(struct MHD_Connection *mc, const char *method, const char *url,
				request *rq)
{
	static const char *const required[] = {"first_name", "second_name", "birthdate", "password"};
	static const char *const known[] = {"first_name", "second_name", "birthdate",
	"password", "biography", "city"};
	json_object obj;
	const char *err;
	const char *params[6];
	char	   *hash;
	char		reason[96];
	PGresult   *res;
	db_outcome	out;
	strbuf		sb = {0};
	enum MHD_Result ret;

	if (!json_parse_flat(rq->body.data ? rq->body.data : "", rq->body.len, &obj, &err))
		return send_error(mc, MHD_HTTP_BAD_REQUEST, err, method, url, NULL);

	for (int i = 0; i < obj.nfields; i++)
	{
		bool		ok = false;

		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strcmp(obj.fields[i].key, known[k]) == 0)
				ok = true;
		if (!ok)
		{
			if (strlen(obj.fields[i].key) <= 32 && !blank(obj.fields[i].key))
				snprintf(reason, sizeof(reason), "unknown field: %s", obj.fields[i].key);
			else
				snprintf(reason, sizeof(reason), "unknown field");
			json_free(&obj);
			return send_error(mc, MHD_HTTP_BAD_REQUEST, reason, method, url, NULL);
		}
	}
	for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++)
	{
		const json_field *f = json_get(&obj, required[k]);

		if (f == NULL || f->value == NULL)
			snprintf(reason, sizeof(reason), "missing field: %s", required[k]);
		else if (blank(f->value))
			snprintf(reason, sizeof(reason), "empty field: %s", required[k]);
		else
			continue;
		json_free(&obj);
		return send_error(mc, MHD_HTTP_BAD_REQUEST, reason, method, url, NULL);
	}
	if (!valid_date(json_get(&obj, "birthdate")->value))
	{
		json_free(&obj);
		return send_error(mc, MHD_HTTP_BAD_REQUEST,
						  "birthdate must be a date written YYYY-MM-DD", method, url, NULL);
	}

	hash = password_hash(json_get(&obj, "password")->value);
	if (hash == NULL)
	{
		json_free(&obj);
		return send_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot hash password",
						  method, url, NULL);
	}
	params[0] = json_get(&obj, "first_name")->value;
	params[1] = json_get(&obj, "second_name")->value;
	params[2] = json_get(&obj, "birthdate")->value;
	params[3] = json_get(&obj, "biography") ? json_get(&obj, "biography")->value : NULL;
	params[4] = json_get(&obj, "city") ? json_get(&obj, "city")->value : NULL;
	params[5] = hash;

	res = db_run(&write_pool, 1, register_sql, 6, params, &out);
	free(hash);
	json_free(&obj);
	if (res == NULL)
		return send_error_detail(mc, status_for(out.kind), out.reason, method, url,
								 NULL, out.detail);

	sb_puts(&sb, "{\"user_id\": ");
	sb_json_string(&sb, PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : NULL);
	sb_puts(&sb, "}");
	PQclear(res);
	ret = send_json(mc, MHD_HTTP_OK, &sb, NULL, out.backend);
	return ret;
}

static enum MHD_Result
handle_get_user(struct MHD_Connection *mc, const char *method, const char *url,
				const char *idtext)
{
	static const char *const names[] = {"id", "first_name", "second_name", "birthdate",
	"biography", "city"};
	long long	id;
	char		idbuf[24];
	const char *params[1];
	PGresult   *res;
	db_outcome	out;
	strbuf		sb = {0};

	if (!parse_id(idtext, &id))
		return send_error(mc, MHD_HTTP_BAD_REQUEST, "id must be a positive integer",
						  method, url, NULL);
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	params[0] = idbuf;

	/* a standby that fails is skipped: try every member before giving up */
	res = db_run(&read_pool, read_pool.nmembers, get_sql, 1, params, &out);
	if (res == NULL)
		return send_error_detail(mc, status_for(out.kind), out.reason, method, url,
								 NULL, out.detail);
	if (PQntuples(res) == 0)
	{
		PQclear(res);
		return send_error(mc, MHD_HTTP_NOT_FOUND, "user not found", method, url, NULL);
	}
	sb_puts(&sb, "{");
	for (int c = 0; c < 6; c++)
	{
		if (c > 0)
			sb_puts(&sb, ", ");
		sb_json_string(&sb, names[c]);
		sb_puts(&sb, ": ");
		sb_json_string(&sb, PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c));
	}
	sb_puts(&sb, "}");
	PQclear(res);
	return send_json(mc, MHD_HTTP_OK, &sb, NULL, out.backend);
}

/*
 * What the service reaches right now: the write pool answering on a primary,
 * and how many read members answer.  Always 200: it reports, it does not fail.
 */
static enum MHD_Result
handle_health(struct MHD_Connection *mc)
{
	strbuf		sb = {0};
	strbuf		hosts = {0};
	db_outcome	out;
	PGresult   *res;
	int			nok = 0;

	res = db_run(&write_pool, 1, "SELECT 1", 0, NULL, &out);
	sb_puts(&sb, "{\"write\": ");
	sb_puts(&sb, res ? "\"ok\"" : "\"unavailable\"");
	sb_puts(&sb, ", \"write_backend\": ");
	sb_json_string(&sb, res ? out.backend : NULL);
	PQclear(res);

	for (int i = 0; i < read_pool.nmembers; i++)
	{
		res = db_run_on(&read_pool, i, "SELECT 1", 0, NULL, &out);
		if (res)
		{
			if (nok > 0)
				sb_puts(&hosts, ", ");
			sb_json_string(&hosts, out.backend);
			nok++;
		}
		PQclear(res);
	}
	sb_printf(&sb, ", \"read\": %d, \"read_pool\": %d, \"read_backends\": [%s]}",
			  nok, read_pool.nmembers, hosts.data ? hosts.data : "");
	if (hosts.oom)
		sb.oom = true;
	sb_free(&hosts);
	return send_json(mc, MHD_HTTP_OK, &sb, NULL, NULL);
}

/* Content-Length larger than the cap (or not a plain number we can read). */
static bool
content_length_too_large(const char *cl)
{
	unsigned long long v = 0;

	while (*cl == ' ' || *cl == '\t')
		cl++;
	for (; *cl >= '0' && *cl <= '9'; cl++)
	{
		v = v * 10 + (unsigned long long) (*cl - '0');
		if (v > MAX_BODY)
			return true;
	}
	return false;
}

static enum MHD_Result
route(struct MHD_Connection *mc, const char *url, const char *method, request *rq)
{
	bool		is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool		is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

	if (strcmp(url, "/user/register") == 0)
	{
		if (!is_post)
			return send_error(mc, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed",
							  method, url, "POST");
		return handle_register(mc, method, url, rq);
	}
	if (strncmp(url, "/user/", 6) == 0 && url[6] != '\0' && strchr(url + 6, '/') == NULL)
	{
		if (!is_get)
			return send_error(mc, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed",
							  method, url, "GET, HEAD");
		return handle_get_user(mc, method, url, url + 6);
	}
	if (strcmp(url, "/health") == 0)
	{
		if (!is_get)
			return send_error(mc, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed",
							  method, url, "GET, HEAD");
		return handle_health(mc);
	}
	return send_error(mc, MHD_HTTP_NOT_FOUND, "not found", method, url, NULL);
}

static long
elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000L + (now.tv_nsec - since->tv_nsec) / 1000000L;
}

/*
 * A chunked body past the cap: 413 now, and the connection closed.
 * libmicrohttpd queues a response only before the body or after its end,
 * so the answer goes straight onto the (plain TCP) socket, whose sending
 * side is then shut.  What the client still sends meanwhile is read and
 * dropped for at most DRAIN_MS (and DRAIN_LIMIT bytes): closing a socket
 * with unread input resets the connection, and the client could lose the
 * answer.  A client that reads it stops sending; one that sends forever
 * is cut off then.  Returning MHD_NO closes the connection.
 */
static enum MHD_Result
refuse_chunked_body(struct MHD_Connection *mc, const char *method, const char *url)
{
	static const char body[] = "{\"error\": \"request body too large\"}";
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	char		head[256];
	char		u[160];
	int			n;

	safe_url(url, u, sizeof(u));
	rk_log("error", "%s %s -> 413 request body too large (chunked request body beyond %d bytes; connection closed)",
		   method, u, MAX_BODY);
	if (ci == NULL)
		return MHD_NO;
	n = snprintf(head, sizeof(head),
				 "HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
				 sizeof(body) - 1, body);
	if (send(ci->connect_fd, head, (size_t) n, MSG_NOSIGNAL) == n &&
		shutdown(ci->connect_fd, SHUT_WR) == 0)
	{
		struct timespec start;
		size_t		drained = 0;
		char		sink[16384];

		clock_gettime(CLOCK_MONOTONIC, &start);
		while (drained < DRAIN_LIMIT)
		{
			struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLIN};
			long		left = DRAIN_MS - elapsed_ms(&start);
			ssize_t		got;

			if (left <= 0 || poll(&pfd, 1, (int) left) <= 0)
				break;
			got = recv(ci->connect_fd, sink, sizeof(sink), MSG_DONTWAIT);
			if (got <= 0)
				break;
			drained += (size_t) got;
		}
	}
	return MHD_NO;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *mc, const char *url,
		   const char *method, const char *version, const char *upload_data,
		   size_t *upload_data_size, void **con_cls)
{
	request    *rq = *con_cls;

	(void) cls;
	(void) version;

	if (rq == NULL)
	{
		/* headers are in: refuse an announced oversize body before reading it */
		const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
													 MHD_HTTP_HEADER_CONTENT_LENGTH);

		rq = calloc(1, sizeof(request));
		if (rq == NULL)
			return MHD_NO;
		*con_cls = rq;
		if (cl && content_length_too_large(cl))
			return send_error(mc, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large",
							  method, url, NULL);
		return MHD_YES;
	}

	if (*upload_data_size > 0)
	{
		/* A chunked body has no length up front: refused once past the cap. */
		if (rq->body.len + *upload_data_size > MAX_BODY)
			return refuse_chunked_body(mc, method, url);
		sb_append(&rq->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (rq->body.oom)
		return send_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory",
						  method, url, NULL);
	return route(mc, url, method, rq);
}

static void
on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	request    *rq = *con_cls;

	(void) cls;
	(void) mc;
	(void) toe;
	if (rq)
	{
		sb_free(&rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

/*
 * Percent-decode a URL in place, like MHD's own unescaper except that %00 is
 * left encoded: a decoded NUL would silently cut the path short, and
 * "/user/1%00junk" must not read user 1.
 */
static size_t
unescape_url(void *cls, struct MHD_Connection *mc, char *s)
{
	char	   *w = s;

	(void) cls;
	(void) mc;
	for (const char *r = s; *r;)
	{
		int			hi,
					lo;

		if (r[0] == '%' && (hi = json_hexval((unsigned char) r[1])) >= 0 &&
			(lo = json_hexval((unsigned char) r[2])) >= 0 &&
			(hi | lo) != 0)
		{
			*w++ = (char) (hi * 16 + lo);
			r += 3;
		}
		else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t) (w - s);
}

static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char		msg[512];

	(void) cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	rk_log("error", "http: %s", msg);
}

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: rk_social --listen [ADDR:]PORT --write CONNINFO --read CONNINFO\n"
			"                 [--read-pool N] [--write-pool N] [--query-timeout MS]\n"
			"                 [--schema-init]\n"
			"\n"
			"  --listen [ADDR:]PORT   HTTP address (IPv4) and port; all interfaces if ADDR is omitted\n"
			"  --write CONNINFO       libpq string that finds the primary\n"
			"                         (multi-host, target_session_attrs=read-write)\n"
			"  --read CONNINFO        libpq string for reads\n"
			"                         (multi-host, target_session_attrs=prefer-standby)\n"
			"  --read-pool N          read connections, member i rotates the host list by i (default %d)\n"
			"  --write-pool N         write connections (default %d)\n"
			"  --query-timeout MS     statement_timeout of every session; the service gives up\n"
			"                         waiting 1 s later (silent server); 0 = none (default %d)\n"
			"  --schema-init          create the users table on the primary if it is missing\n",
			DEFAULT_POOL, DEFAULT_POOL, DEFAULT_QUERY_TIMEOUT_MS);
}

static bool
parse_int(const char *s, int lo, int hi, int *out)
{
	char	   *end;
	long		v;

	if (s == NULL || *s == '\0')
		return false;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < lo || v > hi)
		return false;
	*out = (int) v;
	return true;
}

static bool
parse_listen(const char *arg, struct sockaddr_in *sa)
{
	const char *colon = strrchr(arg, ':');
	int			port;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_ANY);
	if (colon)
	{
		char		host[64];
		size_t		n = (size_t) (colon - arg);

		if (n == 0 || n >= sizeof(host))
			return false;
		memcpy(host, arg, n);
		host[n] = '\0';
		if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
			return false;
		arg = colon + 1;
	}
	if (!parse_int(arg, 1, 65535, &port))
		return false;
	sa->sin_port = htons((uint16_t) port);
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"write", required_argument, NULL, 'w'},
		{"read", required_argument, NULL, 'r'},
		{"read-pool", required_argument, NULL, 'R'},
		{"write-pool", required_argument, NULL, 'W'},
		{"query-timeout", required_argument, NULL, 't'},
		{"schema-init", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *listen_arg = NULL;
	const char *write_ci = NULL;
	const char *read_ci = NULL;
	int			read_n = DEFAULT_POOL;
	int			write_n = DEFAULT_POOL;
	int			timeout_ms = DEFAULT_QUERY_TIMEOUT_MS;
	bool		schema_init = false;
	struct sockaddr_in sa;
	struct MHD_Daemon *daemon;
	sigset_t	sigs;
	int			sig;
	int			c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'l':
				listen_arg = optarg;
				break;
			case 'w':
				write_ci = optarg;
				break;
			case 'r':
				read_ci = optarg;
				break;
			case 'R':
				if (!parse_int(optarg, 1, MAX_POOL, &read_n))
				{
					fprintf(stderr, "rk_social: --read-pool must be 1..%d\n", MAX_POOL);
					return 2;
				}
				break;
			case 'W':
				if (!parse_int(optarg, 1, MAX_POOL, &write_n))
				{
					fprintf(stderr, "rk_social: --write-pool must be 1..%d\n", MAX_POOL);
					return 2;
				}
				break;
			case 't':
				if (!parse_int(optarg, 0, 3600 * 1000, &timeout_ms))
				{
					fprintf(stderr, "rk_social: --query-timeout must be 0..3600000 ms\n");
					return 2;
				}
				break;
			case 's':
				schema_init = true;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc || !listen_arg || !write_ci || !read_ci)
	{
		usage(stderr);
		return 2;
	}
	if (!parse_listen(listen_arg, &sa))
	{
		fprintf(stderr, "rk_social: --listen wants PORT or IPV4ADDR:PORT\n");
		return 2;
	}

	/*
	 * Block the stop signals before any thread exists so that every thread
	 * inherits the mask and only sigwait() below ever sees them.
	 */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (!db_pool_init(&write_pool, "write", "no primary reachable", write_ci,
					  write_n, false, timeout_ms))
		return 2;
	if (!db_pool_init(&read_pool, "read", "no database server reachable for reads",
					  read_ci, read_n, true, timeout_ms))
		return 2;

	if (schema_init)
	{
		db_outcome	out;
		PGresult   *res = db_run(&write_pool, 1, schema_sql, 0, NULL, &out);

		if (res == NULL)
		{
			rk_log("error", "--schema-init failed: %s (%s)", out.reason, out.detail);
			db_pool_close(&read_pool);
			db_pool_close(&write_pool);
			return 1;
		}
		PQclear(res);
		rk_log("info", "schema ready on %s", out.backend);
	}

	/* connect up front so the first requests are not slower; failures are fine */
	db_pool_warm(&write_pool);
	db_pool_warm(&read_pool);

	daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
							  MHD_USE_THREAD_PER_CONNECTION |
							  MHD_USE_POLL | MHD_USE_ERROR_LOG,
							  ntohs(sa.sin_port), NULL, NULL,
							  on_request, NULL,
							  MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
							  MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
							  MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
							  MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 60,
							  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1000,
							  MHD_OPTION_END);
	if (daemon == NULL)
	{
		rk_log("error", "cannot listen on %s", listen_arg);
		db_pool_close(&read_pool);
		db_pool_close(&write_pool);
		return 1;
	}
	rk_log("info", "listening on %s (write pool %d, read pool %d, query timeout %d ms)",
		   listen_arg, write_n, read_n, timeout_ms);

	do
	{
		if (sigwait(&sigs, &sig) != 0)
			sig = 0;
	} while (sig != SIGINT && sig != SIGTERM);

	rk_log("info", "received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	MHD_stop_daemon(daemon);
	db_pool_close(&read_pool);
	db_pool_close(&write_pool);
	return 0;
}
