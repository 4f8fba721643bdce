/*-------------------------------------------------------------------------
 *
 * answers.c
 *		What the node-to-node functions answer, as typed values.  Each
 *		column is parsed strictly (a boolean is t or f, a number is all
 *		digits and in range, an LSN is two hex halves, a name fits and has
 *		no control characters); an answer with a missing or malformed
 *		column is a failed call, never a half-used one.  Callers decide on
 *		these fields only: no decision reads the words meant for people.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "core/peer.h"

/* The refusal codes rk_request_vote() sends, in RkRefusal order. */
static const char *const refusal_codes[] = {
	"", "old_term", "not_standby", "primary_contact", "receives_wal",
	"recent_vote", "more_wal", "wal_unknown", "paused", "unknown"
};

StaticAssertDecl(lengthof(refusal_codes) == RK_REFUSAL_UNKNOWN + 1, "refusal codes");

const char *
rk_refusal_code(RkRefusal r)
{
	return r <= RK_REFUSAL_UNKNOWN ? refusal_codes[r] : "unknown";
}

static RkRefusal
refusal_from_code(const char *code)
{
	for (int i = RK_REFUSAL_OLD_TERM; i < RK_REFUSAL_UNKNOWN; i++)
		if (strcmp(code, refusal_codes[i]) == 0)
			return (RkRefusal) i;
	return RK_REFUSAL_UNKNOWN;
}

/* Mark the call failed because of its answer. */
static bool
malformed(RkCall *c, const char *column)
{
	snprintf(c->error, sizeof(c->error), "malformed answer: column %s", column);
	c->phase = RK_CALL_FAILED;
	return false;
}

/* The text of a column, or NULL if it is missing or SQL NULL. */
static const char *
column(RkCall *c, const char *name)
{
	return rk_call_value(c, name);
}

static bool
get_bool(RkCall *c, const char *name, bool *out)
{
	const char *v = column(c, name);

	if (v == NULL || (strcmp(v, "t") != 0 && strcmp(v, "f") != 0))
		return malformed(c, name);
	*out = v[0] == 't';
	return true;
}

/* A non-negative integer of at most `max`. */
static bool
get_uint(RkCall *c, const char *name, uint64 max, uint64 *out)
{
	const char *v = column(c, name);
	char	   *end;
	unsigned long long n;

	if (v == NULL || v[0] < '0' || v[0] > '9')
		return malformed(c, name);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n > max)
		return malformed(c, name);
	*out = (uint64) n;
	return true;
}

static bool
get_lsn(RkCall *c, const char *name, XLogRecPtr *out)
{
	const char *v = column(c, name);
	uint32		hi,
				lo;
	int			len;

	const char *slash = v ? strchr(v, '/') : NULL;

	/* Two halves of one to eight hex digits each, nothing else. */
	if (v == NULL || slash == NULL || slash == v || slash - v > 8 ||
		strlen(slash + 1) < 1 || strlen(slash + 1) > 8 ||
		strspn(v, "0123456789ABCDEFabcdef") != (size_t) (slash - v) ||
		strspn(slash + 1, "0123456789ABCDEFabcdef") != strlen(slash + 1) ||
		sscanf(v, "%X/%X%n", &hi, &lo, &len) != 2 || v[len] != '\0')
		return malformed(c, name);
	*out = ((uint64) hi << 32) | lo;
	return true;
}

/* A name: NULL gives "" when `nullable`, else the answer is malformed. */
static bool
get_name(RkCall *c, const char *name, bool nullable, char *out)
{
	const char *v = column(c, name);

	out[0] = '\0';
	if (v == NULL)
		return nullable ? true : malformed(c, name);
	if (strlen(v) >= NAMEDATALEN)
		return malformed(c, name);
	for (const char *p = v; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			return malformed(c, name);
	strlcpy(out, v, NAMEDATALEN);
	return true;
}

/* Common to every answer: the call came back with exactly one row. */
static bool
answered(RkCall *c)
{
	if (c->phase != RK_CALL_DONE)
		return false;
	if (c->res == NULL || PQntuples(c->res) != 1)
		return malformed(c, "(row count)");
	return true;
}

/* rk_peer_state(): who the peer is and what it knows. */
bool
rk_answer_state(RkCall *c, RkStateAnswer *a)
{
	uint64		tli,
				silence,
				own_tli = 0;
	bool		paused = false;

	memset(a, 0, sizeof(*a));
	return answered(c) &&
		get_name(c, "node_name", true, a->name) &&
		get_bool(c, "in_recovery", &a->in_recovery) &&
		get_uint(c, "timeline", PG_UINT32_MAX, &tli) &&
		get_lsn(c, "lsn", &a->lsn) &&
		get_uint(c, "term", PG_INT64_MAX, &a->term) &&
		get_name(c, "primary_name", true, a->primary_name) &&
		get_name(c, "voted_for", true, a->voted_for) &&
		get_uint(c, "silence_ms", LONG_MAX, &silence) &&
		get_bool(c, "fenced", &a->fenced) &&
		((a->timeline = (TimeLineID) tli), (a->silence_ms = (long) silence), true) &&
		/* Absent from a node with an older library: it does not ask. */
		(column(c, "needs_secret") == NULL || get_bool(c, "needs_secret", &a->needs_secret)) &&
		/* Within the settings' own ranges: a peer cannot shrink a lease to nothing or stall votes for days. */
		(column(c, "failover_timeout_ms") == NULL ||
		 get_uint(c, "failover_timeout_ms", RK_TIMING_MAX_MS, &a->failover_timeout_ms)) &&
		(column(c, "lease_ms") == NULL || get_uint(c, "lease_ms", RK_TIMING_MAX_MS, &a->lease_ms)) &&
		(column(c, "own_timeline") == NULL || get_uint(c, "own_timeline", PG_UINT32_MAX, &own_tli)) &&
		((a->own_timeline = (TimeLineID) own_tli), true) &&
		(column(c, "paused") == NULL ? ((a->pause_state = -1), true) :
		 (get_bool(c, "paused", &paused) && ((a->pause_state = paused ? 1 : 0), true))) &&
		(column(c, "pause_id") == NULL || get_uint(c, "pause_id", (uint64) RK_TERM_MAX * 1000 + 999, &a->pause_id)) &&
		(a->failover_timeout_ms == 0 || a->failover_timeout_ms >= RK_FAILOVER_TIMEOUT_MIN_MS ||
		 malformed(c, "failover_timeout_ms"));
}

/* rk_request_vote(): granted, or refused with a code. */
bool
rk_answer_vote(RkCall *c, RkVoteAnswer *a)
{
	uint64		tli;
	const char *reason;
	const char *code;

	memset(a, 0, sizeof(*a));
	if (!(answered(c) &&
		  get_bool(c, "granted", &a->granted) &&
		  get_uint(c, "voter_term", PG_INT64_MAX, &a->term) &&
		  get_uint(c, "voter_timeline", PG_UINT32_MAX, &tli) &&
		  get_lsn(c, "voter_lsn", &a->lsn)))
		return false;
	a->timeline = (TimeLineID) tli;
	code = column(c, "refusal");
	if (a->granted)
		a->refusal = RK_REFUSAL_NONE;
	else if (code == NULL)
		return malformed(c, "refusal");
	else
		a->refusal = refusal_from_code(code);
	reason = column(c, "reason");
	strlcpy(a->reason, reason ? reason : "", sizeof(a->reason));
	return true;
}

/* rk_peer_fence(): was it the primary, and how far its WAL goes. */
bool
rk_answer_fence(RkCall *c, RkFenceAnswer *a)
{
	uint64		tli;

	memset(a, 0, sizeof(*a));
	return answered(c) &&
		get_bool(c, "was_primary", &a->was_primary) &&
		get_lsn(c, "lsn", &a->lsn) &&
		get_uint(c, "timeline", PG_UINT32_MAX, &tli) &&
		((a->timeline = (TimeLineID) tli), true);
}

/* rk_peer_failover(): whether it happened, and whether it was forced past the rules. */
bool
rk_answer_failover(RkCall *c, RkFailoverAnswer *a)
{
	const char *result;

	memset(a, 0, sizeof(*a));
	if (!(answered(c) &&
		  get_bool(c, "ok", &a->ok) &&
		  get_bool(c, "forced_loss", &a->forced_loss)))
		return false;
	result = column(c, "result");
	a->result = pstrdup(result ? result : "");
	return true;
}
