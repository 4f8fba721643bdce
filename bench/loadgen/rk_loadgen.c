/*
 * rk_loadgen.c
 *		Load generator for the walkthrough's social-network service: the
 *		"before" (primary only) and "after" (primary + standbys) load tests,
 *		and the request timeline behind the failover chart.
 *
 * C threads each keep one HTTP/1.1 keep-alive connection and run a closed
 * loop for the given duration: with probability --write-ratio a
 * POST /user/register with random but valid fields, otherwise a
 * GET /user/{id} of a user this run registered (at --preload time or earlier
 * in the run).  Every request's latency is taken with CLOCK_MONOTONIC and
 * kept, so the percentiles are exact rather than estimated from buckets.
 *
 * The summary goes to stdout; --csv appends one line per kind for charting
 * "before" beside "after"; --timeline writes per-100 ms counts of successes
 * and errors, which shows how long writes failed during a failover and that
 * reads did not.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"

#define KIND_WRITE 0
#define KIND_READ 1
#define NKINDS 2
#define BUCKET_MS 100
#define MAX_ERROR_MESSAGES 10

static const char *const kind_name[NKINDS] = {"write", "read"};

/* Latencies of one kind on one thread, in microseconds. */
typedef struct lat_vec
{
	uint32_t   *us;
	size_t		n;
	size_t		cap;
} lat_vec;

/* How requests of one kind ended. */
typedef struct kind_stats
{
	lat_vec		lat;
	uint64_t	ok;
	uint64_t	err_socket;
	uint64_t	err_404;
	uint64_t	err_4xx;		/* other than 404 */
	uint64_t	err_5xx;
	uint64_t	err_other;		/* 1xx, 3xx */
} kind_stats;

/* one timeline bucket: write_ok, write_err, read_ok, read_err */
typedef uint32_t bucket[4];

typedef struct worker
{
	int			index;
	pthread_t	thread;
	uint64_t	rng[4];
	http_conn	conn;
	kind_stats	stats[NKINDS];
	bucket	   *timeline;
	uint64_t	preload_target;
	uint64_t	preload_errors;
	struct timespec finished;
} worker;

/*
 * Ids registered by this run, shared by all threads, with the monotonic time
 * each was stored (appended under the lock, so the times never decrease).
 */
static struct
{
	pthread_mutex_t lock;
	int64_t    *ids;
	struct timespec *at;
	size_t		n;
	size_t		cap;
}			idstore = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, 0};

static http_target target;
static double opt_duration = 10.0;
static int	opt_concurrency = 8;
static double opt_write_ratio = 0.2;
static uint64_t opt_seed;
static long opt_preload = 0;
static int	opt_timeout_ms = 10000;
static const char *opt_csv = NULL;
static const char *opt_timeline = NULL;
static const char *opt_label = "run";
static double opt_read_min_age_ms = 0;

static pthread_barrier_t start_barrier;
static struct timespec t_start;
static struct timespec t_end;
static size_t nbuckets;
static atomic_int nerror_messages;

static const char *const first_names[] = {
	"Ivan", "Petr", "Anna", "Maria", "Olga", "Dmitry", "Sergey", "Elena",
	"Алексей", "Наталья", "Михаил", "Татьяна", "Nikolai", "Irina", "Pavel", "Svetlana"
};
static const char *const second_names[] = {
	"Ivanov", "Petrova", "Smirnov", "Kuznetsova", "Popov", "Vasilieva", "Sokolov",
	"Соколов", "Лебедева", "Козлов", "Новикова", "Morozov", "Volkova", "Fedorov"
};
static const char *const cities[] = {
	"Moscow", "Saint Petersburg", "Novosibirsk", "Yekaterinburg", "Kazan",
	"Нижний Новгород", "Самара", "Omsk", "Rostov-on-Don", "Ufa"
};
static const char *const words[] = {
	"likes", "hiking", "books", "chess", "music", "travel", "coffee", "databases",
	"replication", "cats", "dogs", "football", "cooking", "photography", "running",
	"postgres", "and", "the", "sea", "mountains", "jazz", "cinema"
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* xoshiro256** seeded through splitmix64: fast, per thread, reproducible. */
static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t	z = (*x += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static double
rng_double(uint64_t *s)
{
	return (double) (rng_next(s) >> 11) * 0x1.0p-53;
}

static uint64_t
rng_below(uint64_t *s, uint64_t n)
{
	return n ? rng_next(s) % n : 0;
}

static double
ts_ms(const struct timespec *a, const struct timespec *b)
{
	return (double) (b->tv_sec - a->tv_sec) * 1e3 + (double) (b->tv_nsec - a->tv_nsec) / 1e6;
}

static bool
ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void
lat_push(lat_vec *v, uint32_t us)
{
	if (v->n == v->cap)
	{
		size_t		ncap = v->cap ? v->cap * 2 : 4096;
		uint32_t   *nv = realloc(v->us, ncap * sizeof(uint32_t));

		if (nv == NULL)
		{
			fprintf(stderr, "rk_loadgen: out of memory for latencies\n");
			exit(1);
		}
		v->us = nv;
		v->cap = ncap;
	}
	v->us[v->n++] = us;
}

static void
idstore_add(int64_t id)
{
	pthread_mutex_lock(&idstore.lock);
	if (idstore.n == idstore.cap)
	{
		size_t		ncap = idstore.cap ? idstore.cap * 2 : 1024;
		int64_t    *ni = realloc(idstore.ids, ncap * sizeof(int64_t));
		struct timespec *na;

		if (ni == NULL)
		{
			pthread_mutex_unlock(&idstore.lock);
			return;				/* keep going with the ids we have */
		}
		idstore.ids = ni;
		na = realloc(idstore.at, ncap * sizeof(struct timespec));
		if (na == NULL)
		{
			pthread_mutex_unlock(&idstore.lock);
			return;
		}
		idstore.at = na;
		idstore.cap = ncap;
	}
	clock_gettime(CLOCK_MONOTONIC, &idstore.at[idstore.n]);
	idstore.ids[idstore.n++] = id;
	pthread_mutex_unlock(&idstore.lock);
}

/*
 * A random id among those stored at least --read-min-age ago (all of them by
 * default); false when there is none yet.
 */
static bool
idstore_pick(uint64_t *rng, int64_t *id)
{
	bool		found = false;
	size_t		eligible;

	pthread_mutex_lock(&idstore.lock);
	eligible = idstore.n;
	if (opt_read_min_age_ms > 0 && eligible > 0)
	{
		struct timespec now;
		size_t		lo = 0,
					hi = idstore.n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		/* first index stored less than min-age ago */
		while (lo < hi)
		{
			size_t		mid = lo + (hi - lo) / 2;

			if (ts_ms(&idstore.at[mid], &now) >= opt_read_min_age_ms)
				lo = mid + 1;
			else
				hi = mid;
		}
		eligible = lo;
	}
	if (eligible > 0)
	{
		*id = idstore.ids[rng_below(rng, eligible)];
		found = true;
	}
	pthread_mutex_unlock(&idstore.lock);
	return found;
}

/* The user id from {"user_id": "123"} (or a bare number); 0 if absent. */
static int64_t
parse_user_id(const char *body, size_t len)
{
	static const char key[] = "\"user_id\"";
	const char *end = body + len;
	const char *p = NULL;
	int64_t		v = 0;

	for (const char *q = body; q + sizeof(key) - 1 <= end; q++)
		if (memcmp(q, key, sizeof(key) - 1) == 0)
		{
			p = q + sizeof(key) - 1;
			break;
		}
	if (p == NULL)
		return 0;
	while (p < end && (*p == ' ' || *p == ':' || *p == '"' || *p == '\t'))
		p++;
	while (p < end && *p >= '0' && *p <= '9' && v < INT64_MAX / 10)
		v = v * 10 + (*p++ - '0');
	return v;
}

/* A random, valid registration body. */
static size_t
make_register_body(uint64_t *rng, char *buf, size_t buflen)
{
	char		bio[512];
	char		password[17];
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t		blen = 0;
	int			nwords = 5 + (int) rng_below(rng, 16);
	int			year = 1950 + (int) rng_below(rng, 56);
	int			month = 1 + (int) rng_below(rng, 12);
	int			day = 1 + (int) rng_below(rng, 28);
	int			n;

	bio[0] = '\0';
	for (int i = 0; i < nwords; i++)
	{
		n = snprintf(bio + blen, sizeof(bio) - blen, "%s%s", i ? " " : "",
					 words[rng_below(rng, NELEM(words))]);
		if (n < 0 || (size_t) n >= sizeof(bio) - blen)
			break;
		blen += (size_t) n;
	}
	for (size_t i = 0; i < sizeof(password) - 1; i++)
		password[i] = alnum[rng_below(rng, sizeof(alnum) - 1)];
	password[sizeof(password) - 1] = '\0';

	n = snprintf(buf, buflen,
				 "{\"first_name\": \"%s\", \"second_name\": \"%s\", "
				 "\"birthdate\": \"%04d-%02d-%02d\", \"biography\": \"%s\", "
				 "\"city\": \"%s\", \"password\": \"%s\"}",
				 first_names[rng_below(rng, NELEM(first_names))],
				 second_names[rng_below(rng, NELEM(second_names))],
				 year, month, day, bio,
				 cities[rng_below(rng, NELEM(cities))], password);
	return (n < 0 || (size_t) n >= buflen) ? 0 : (size_t) n;
}

static void
report_error(const worker *w, int kind, const char *what, const char *body, size_t body_len)
{
	int			k = atomic_fetch_add(&nerror_messages, 1);

	if (k < MAX_ERROR_MESSAGES)
		fprintf(stderr, "rk_loadgen: thread %d %s error: %s%s%.*s\n",
				w->index, kind_name[kind], what, body_len ? ": " : "",
				(int) (body_len > 200 ? 200 : body_len), body ? body : "");
	else if (k == MAX_ERROR_MESSAGES)
		fprintf(stderr, "rk_loadgen: further error messages suppressed\n");
}

/*
 * One request of the given kind.  Returns the HTTP status, or -1 on a socket
 * error; a successful registration adds its id to the store.
 */
static int
do_request(worker *w, int kind, bool quiet)
{
	char		body[1024];
	char		path[64];
	char		err[160];
	http_response resp = {0};
	int			rc;

	if (kind == KIND_WRITE)
	{
		size_t		blen = make_register_body(w->rng, body, sizeof(body));

		rc = http_request(&w->conn, "POST", "/user/register", body, blen, &resp,
						  err, sizeof(err));
	}
	else
	{
		int64_t		id = 0;

		idstore_pick(w->rng, &id);
		snprintf(path, sizeof(path), "/user/%lld", (long long) id);
		rc = http_request(&w->conn, "GET", path, NULL, 0, &resp, err, sizeof(err));
	}
	if (rc < 0)
	{
		if (!quiet)
			report_error(w, kind, err, NULL, 0);
		return -1;
	}
	if (resp.status >= 200 && resp.status < 300)
	{
		if (kind == KIND_WRITE)
		{
			int64_t		id = parse_user_id(resp.body, resp.body_len);

			if (id > 0)
				idstore_add(id);
		}
	}
	else if (!quiet)
	{
		char		what[32];

		snprintf(what, sizeof(what), "HTTP %d", resp.status);
		report_error(w, kind, what, resp.body, resp.body_len);
	}
	return resp.status;
}

static void
record(worker *w, int kind, int status, const struct timespec *t0, const struct timespec *t1)
{
	kind_stats *ks = &w->stats[kind];
	double		us = ts_ms(t0, t1) * 1000.0;
	bool		ok = status >= 200 && status < 300;
	double		since = ts_ms(&t_start, t1);
	size_t		b;

	lat_push(&ks->lat, us < 0 ? 0 : us > 4e9 ? 4000000000U : (uint32_t) us);
	if (ok)
		ks->ok++;
	else if (status < 0)
		ks->err_socket++;
	else if (status == 404)
		ks->err_404++;
	else if (status >= 400 && status < 500)
		ks->err_4xx++;
	else if (status >= 500)
		ks->err_5xx++;
	else
		ks->err_other++;

	b = since < 0 ? 0 : (size_t) (since / BUCKET_MS);
	if (b >= nbuckets)
		b = nbuckets - 1;
	w->timeline[b][kind * 2 + (ok ? 0 : 1)]++;
}

static void *
worker_main(void *arg)
{
	worker	   *w = arg;

	/* preload: this thread's share of the users to read */
	for (uint64_t i = 0; i < w->preload_target; i++)
	{
		int			st = do_request(w, KIND_WRITE, false);

		if (st < 200 || st >= 300)
			w->preload_errors++;
	}

	pthread_barrier_wait(&start_barrier);	/* preload done everywhere */
	pthread_barrier_wait(&start_barrier);	/* main has set t_start/t_end */

	for (;;)
	{
		struct timespec t0,
					t1;
		int			kind;
		int			status;
		int64_t		dummy;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (!ts_before(&t0, &t_end))
			break;
		kind = rng_double(w->rng) < opt_write_ratio ? KIND_WRITE : KIND_READ;
		/* nothing (old enough) to read yet: register instead */
		if (kind == KIND_READ && !idstore_pick(w->rng, &dummy))
			kind = KIND_WRITE;
		status = do_request(w, kind, false);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		record(w, kind, status, &t0, &t1);
		if (status < 0)
		{
			/* the service is not there: do not spin on refused connects */
			struct timespec pause = {0, 10 * 1000 * 1000};

			nanosleep(&pause, NULL);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &w->finished);
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *) a;
	uint32_t	y = *(const uint32_t *) b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted microseconds, in ms. */
static double
percentile_ms(const uint32_t *sorted, size_t n, double q)
{
	size_t		rank;

	if (n == 0)
		return 0.0;
	rank = (size_t) ceil(q * (double) n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1] / 1000.0;
}

typedef struct summary
{
	uint64_t	requests;
	uint64_t	errors;
	double		rps;
	double		p50,
				p95,
				p99,
				max;
	kind_stats	total;
} summary;

static void
summarize(worker *ws, int n, int kind, double elapsed_s, summary *s)
{
	size_t		count = 0;
	uint32_t   *all;
	size_t		k = 0;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < n; i++)
	{
		kind_stats *ks = &ws[i].stats[kind];

		count += ks->lat.n;
		s->total.ok += ks->ok;
		s->total.err_socket += ks->err_socket;
		s->total.err_404 += ks->err_404;
		s->total.err_4xx += ks->err_4xx;
		s->total.err_5xx += ks->err_5xx;
		s->total.err_other += ks->err_other;
	}
	s->requests = count;
	s->errors = count - s->total.ok;
	s->rps = elapsed_s > 0 ? (double) count / elapsed_s : 0.0;
	if (count == 0)
		return;
	all = malloc(count * sizeof(uint32_t));
	if (all == NULL)
	{
		fprintf(stderr, "rk_loadgen: out of memory for percentiles\n");
		exit(1);
	}
	for (int i = 0; i < n; i++)
	{
		memcpy(all + k, ws[i].stats[kind].lat.us, ws[i].stats[kind].lat.n * sizeof(uint32_t));
		k += ws[i].stats[kind].lat.n;
	}
	qsort(all, count, sizeof(uint32_t), cmp_u32);
	s->p50 = percentile_ms(all, count, 0.50);
	s->p95 = percentile_ms(all, count, 0.95);
	s->p99 = percentile_ms(all, count, 0.99);
	s->max = all[count - 1] / 1000.0;
	free(all);
}

static bool
write_csv(const char *path, const summary *s)
{
	FILE	   *f = fopen(path, "a");
	bool		ok;

	if (f == NULL)
	{
		fprintf(stderr, "rk_loadgen: cannot open %s: %s\n", path, strerror(errno));
		return false;
	}
	if (ftell(f) == 0)
		fprintf(f, "label,kind,requests,errors,rps,p50_ms,p95_ms,p99_ms\n");
	for (int kind = 0; kind < NKINDS; kind++)
		fprintf(f, "%s,%s,%llu,%llu,%.2f,%.3f,%.3f,%.3f\n",
				opt_label, kind_name[kind],
				(unsigned long long) s[kind].requests, (unsigned long long) s[kind].errors,
				s[kind].rps, s[kind].p50, s[kind].p95, s[kind].p99);
	ok = fclose(f) == 0;
	if (!ok)
		fprintf(stderr, "rk_loadgen: cannot write %s: %s\n", path, strerror(errno));
	return ok;
}

static bool
write_timeline(const char *path, worker *ws, int n)
{
	FILE	   *f = fopen(path, "w");
	size_t		last = (size_t) ceil(opt_duration * 1000.0 / BUCKET_MS);
	bool		ok;

	if (f == NULL)
	{
		fprintf(stderr, "rk_loadgen: cannot open %s: %s\n", path, strerror(errno));
		return false;
	}
	/* requests still running at the end land in buckets past the duration */
	for (size_t b = last; b < nbuckets; b++)
		for (int i = 0; i < n; i++)
			for (int c = 0; c < 4; c++)
				if (ws[i].timeline[b][c])
					last = b + 1;
	if (last > nbuckets)
		last = nbuckets;
	fprintf(f, "t_ms,write_ok,write_err,read_ok,read_err\n");
	for (size_t b = 0; b < last; b++)
	{
		unsigned long long sum[4] = {0, 0, 0, 0};

		for (int i = 0; i < n; i++)
			for (int c = 0; c < 4; c++)
				sum[c] += ws[i].timeline[b][c];
		fprintf(f, "%zu,%llu,%llu,%llu,%llu\n", b * BUCKET_MS, sum[0], sum[1], sum[2], sum[3]);
	}
	ok = fclose(f) == 0;
	if (!ok)
		fprintf(stderr, "rk_loadgen: cannot write %s: %s\n", path, strerror(errno));
	return ok;
}

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: rk_loadgen --url http://HOST:PORT [options]\n"
			"\n"
			"  --url URL           the service, http://host[:port][/prefix]\n"
			"  --duration SECONDS  how long to run after the preload (default 10)\n"
			"  --concurrency C     threads, one keep-alive connection each (default 8)\n"
			"  --write-ratio R     share of POST /user/register, 0..1 (default 0.2)\n"
			"  --preload N         register N users before timing starts (default 0)\n"
			"  --seed N            random seed (default: from the clock; printed)\n"
			"  --timeout SECONDS   connect/send/receive timeout per request (default 10)\n"
			"  --read-min-age MS   read only ids registered at least MS ago, so that\n"
			"                      standby replay lag does not show up as 404s (default 0)\n"
			"  --label TEXT        first column of the --csv lines (default \"run\")\n"
			"  --csv FILE          append label,kind,requests,errors,rps,p50_ms,p95_ms,p99_ms\n"
			"  --timeline FILE     write t_ms,write_ok,write_err,read_ok,read_err per 100 ms\n");
}

static bool
parse_double(const char *s, double lo, double hi, double *out)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

static bool
parse_long(const char *s, long lo, long hi, long *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},
		{"duration", required_argument, NULL, 'd'},
		{"concurrency", required_argument, NULL, 'c'},
		{"write-ratio", required_argument, NULL, 'w'},
		{"preload", required_argument, NULL, 'p'},
		{"seed", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'},
		{"label", required_argument, NULL, 'l'},
		{"csv", required_argument, NULL, 'C'},
		{"timeline", required_argument, NULL, 'T'},
		{"read-min-age", required_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *url = NULL;
	bool		seed_given = false;
	char		err[256];
	worker	   *ws;
	summary		sum[NKINDS];
	struct timespec t_done;
	double		elapsed_s;
	uint64_t	preload_errors = 0;
	double		v;
	long		l;
	int			c;
	int			rc = 0;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'u':
				url = optarg;
				break;
			case 'd':
				if (!parse_double(optarg, 0.1, 86400, &opt_duration))
				{
					fprintf(stderr, "rk_loadgen: --duration must be 0.1..86400 seconds\n");
					return 2;
				}
				break;
			case 'c':
				if (!parse_long(optarg, 1, 4096, &l))
				{
					fprintf(stderr, "rk_loadgen: --concurrency must be 1..4096\n");
					return 2;
				}
				opt_concurrency = (int) l;
				break;
			case 'w':
				if (!parse_double(optarg, 0, 1, &opt_write_ratio))
				{
					fprintf(stderr, "rk_loadgen: --write-ratio must be 0..1\n");
					return 2;
				}
				break;
			case 'p':
				if (!parse_long(optarg, 0, 100000000, &opt_preload))
				{
					fprintf(stderr, "rk_loadgen: --preload must be 0..100000000\n");
					return 2;
				}
				break;
			case 's':
				{
					char	   *end;

					errno = 0;
					opt_seed = strtoull(optarg, &end, 10);
					if (errno || end == optarg || *end != '\0')
					{
						fprintf(stderr, "rk_loadgen: --seed must be an unsigned integer\n");
						return 2;
					}
					seed_given = true;
				}
				break;
			case 't':
				if (!parse_double(optarg, 0.1, 3600, &v))
				{
					fprintf(stderr, "rk_loadgen: --timeout must be 0.1..3600 seconds\n");
					return 2;
				}
				opt_timeout_ms = (int) (v * 1000);
				break;
			case 'l':
				if (strpbrk(optarg, ",\n\r\""))
				{
					fprintf(stderr, "rk_loadgen: --label must not contain commas, quotes or newlines\n");
					return 2;
				}
				opt_label = optarg;
				break;
			case 'C':
				opt_csv = optarg;
				break;
			case 'T':
				opt_timeline = optarg;
				break;
			case 'A':
				if (!parse_double(optarg, 0, 3600 * 1000, &opt_read_min_age_ms))
				{
					fprintf(stderr, "rk_loadgen: --read-min-age must be 0..3600000 ms\n");
					return 2;
				}
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				usage(stderr);
				return 2;
		}
	}
	if (optind < argc || url == NULL)
	{
		usage(stderr);
		return 2;
	}
	if (!http_parse_url(url, &target, err, sizeof(err)))
	{
		fprintf(stderr, "rk_loadgen: --url: %s\n", err);
		return 2;
	}
	if (!seed_given)
	{
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		opt_seed = (uint64_t) now.tv_sec * 1000003ULL ^ (uint64_t) now.tv_nsec;
	}
	signal(SIGPIPE, SIG_IGN);

	nbuckets = (size_t) ceil(opt_duration * 1000.0 / BUCKET_MS) +
		(size_t) (opt_timeout_ms / BUCKET_MS) + 2;
	ws = calloc((size_t) opt_concurrency, sizeof(worker));
	if (ws == NULL || pthread_barrier_init(&start_barrier, NULL, (unsigned) opt_concurrency + 1) != 0)
	{
		fprintf(stderr, "rk_loadgen: out of memory\n");
		return 1;
	}

	printf("rk_loadgen: url=%s label=%s duration=%.1fs concurrency=%d write_ratio=%.2f "
		   "preload=%ld read_min_age=%.0fms seed=%llu\n",
		   target.display, opt_label, opt_duration, opt_concurrency, opt_write_ratio,
		   opt_preload, opt_read_min_age_ms, (unsigned long long) opt_seed);
	fflush(stdout);

	for (int i = 0; i < opt_concurrency; i++)
	{
		uint64_t	sm = opt_seed + (uint64_t) i * 0x632BE59BD9B4E019ULL;
		worker	   *w = &ws[i];

		w->index = i;
		for (int k = 0; k < 4; k++)
			w->rng[k] = splitmix64(&sm);
		http_conn_init(&w->conn, &target, opt_timeout_ms);
		w->timeline = calloc(nbuckets, sizeof(bucket));
		if (w->timeline == NULL)
		{
			fprintf(stderr, "rk_loadgen: out of memory\n");
			return 1;
		}
		w->preload_target = (uint64_t) (opt_preload / opt_concurrency) +
			((long) i < opt_preload % opt_concurrency ? 1 : 0);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		{
			fprintf(stderr, "rk_loadgen: cannot start thread %d\n", i);
			return 1;
		}
	}

	pthread_barrier_wait(&start_barrier);
	for (int i = 0; i < opt_concurrency; i++)
		preload_errors += ws[i].preload_errors;
	if (opt_preload > 0)
		fprintf(stderr, "rk_loadgen: preloaded %zu users (%llu failed)\n",
				idstore.n, (unsigned long long) preload_errors);
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	t_end = t_start;
	t_end.tv_sec += (time_t) opt_duration;
	t_end.tv_nsec += (long) ((opt_duration - floor(opt_duration)) * 1e9);
	if (t_end.tv_nsec >= 1000000000L)
	{
		t_end.tv_sec++;
		t_end.tv_nsec -= 1000000000L;
	}
	pthread_barrier_wait(&start_barrier);

	t_done = t_start;
	for (int i = 0; i < opt_concurrency; i++)
	{
		pthread_join(ws[i].thread, NULL);
		if (ts_before(&t_done, &ws[i].finished))
			t_done = ws[i].finished;
	}
	elapsed_s = ts_ms(&t_start, &t_done) / 1000.0;

	for (int kind = 0; kind < NKINDS; kind++)
		summarize(ws, opt_concurrency, kind, elapsed_s, &sum[kind]);

	printf("elapsed %.3f s\n", elapsed_s);
	printf("%-6s %10s %8s %10s %9s %9s %9s %9s\n",
		   "kind", "requests", "errors", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms");
	for (int kind = 0; kind < NKINDS; kind++)
		printf("%-6s %10llu %8llu %10.2f %9.3f %9.3f %9.3f %9.3f\n",
			   kind_name[kind], (unsigned long long) sum[kind].requests,
			   (unsigned long long) sum[kind].errors, sum[kind].rps,
			   sum[kind].p50, sum[kind].p95, sum[kind].p99, sum[kind].max);
	for (int kind = 0; kind < NKINDS; kind++)
		printf("%s errors: socket=%llu http_404=%llu http_4xx=%llu http_5xx=%llu other=%llu\n",
			   kind_name[kind],
			   (unsigned long long) sum[kind].total.err_socket,
			   (unsigned long long) sum[kind].total.err_404,
			   (unsigned long long) sum[kind].total.err_4xx,
			   (unsigned long long) sum[kind].total.err_5xx,
			   (unsigned long long) sum[kind].total.err_other);

	if (opt_csv && !write_csv(opt_csv, sum))
		rc = 1;
	if (opt_timeline && !write_timeline(opt_timeline, ws, opt_concurrency))
		rc = 1;

	for (int i = 0; i < opt_concurrency; i++)
	{
		http_conn_free(&ws[i].conn);
		for (int kind = 0; kind < NKINDS; kind++)
			free(ws[i].stats[kind].lat.us);
		free(ws[i].timeline);
	}
	free(ws);
	free(idstore.ids);
	free(idstore.at);
	pthread_barrier_destroy(&start_barrier);
	return rc;
}
