/*-------------------------------------------------------------------------
 *
 * journal.c
 *		What the worker tells people: every decision goes to the server log
 *		at once, with the kit's prefix, and on a primary into rk_events;
 *		a standby keeps its entries until it is the primary (the last 64).
 *		And the readiness remark rk_status() shows on this node's row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "core/compat.h"
#include "core/local.h"
#include "worker/fsm.h"

#define RK_NOTIFY_CHANNEL	"replication_kit"
#define RK_NOTIFY_LOCK_TIMEOUT_MS	200	/* the most the worker waits for the notify lock */

void
rk_journal(RkView *v, const char *kind, const char *node, const char *fmt,...)
{
	RkWorkerContext *ctx = v->ctx;
	va_list		ap;
	RkJournalEntry *e;

	if (ctx->journal_len == RK_JOURNAL_SIZE)
	{
		memmove(&ctx->journal[0], &ctx->journal[1], sizeof(RkJournalEntry) * (RK_JOURNAL_SIZE - 1));
		ctx->journal_len--;
	}
	e = &ctx->journal[ctx->journal_len++];
	e->at = GetCurrentTimestamp();
	e->term = v->st.term;
	strlcpy(e->kind, kind, sizeof(e->kind));
	strlcpy(e->node, node ? node : v->self, sizeof(e->node));
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);

	ereport(LOG,
			(errmsg(RK_LOG_PREFIX "%s %s (term " UINT64_FORMAT "): %s", e->kind, e->node, e->term, e->detail)));
}

/*
 * NOTIFY replication_kit with the entry as JSON, sent when the entry's
 * transaction commits: a client that LISTENs on the primary (a pooler, a
 * monitor) learns of the take-over, a rejoin, a hook's result.
 */
static void
notify(RkJournalEntry *e)
{
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"kind\": ");
	escape_json(&payload, e->kind);
	appendStringInfoString(&payload, ", \"node\": ");
	escape_json(&payload, e->node);
	appendStringInfo(&payload, ", \"term\": " UINT64_FORMAT ", \"primary\": ", e->term);
	escape_json(&payload, rk_self_name() ? rk_self_name() : "");
	appendStringInfoString(&payload, ", \"at\": ");
	escape_json(&payload, timestamptz_to_str(e->at));
	appendStringInfoString(&payload, ", \"detail\": ");
	escape_json(&payload, e->detail);
	appendStringInfoChar(&payload, '}');
	Async_Notify(RK_NOTIFY_CHANNEL, payload.data);
	pfree(payload.data);
}

/*
 * The NOTIFYs of the entries just written, in a transaction of their own.
 * Their commit takes the database's notify lock, which a client's
 * transaction that NOTIFY'd holds while it waits for a synchronous standby:
 * the worker waits at most RK_NOTIFY_LOCK_TIMEOUT for it, and a NOTIFY that
 * cannot be sent (that, or a full queue) is logged and dropped, never an
 * error that stops the worker's rounds.  rk_events has the entries anyway.
 */
static void
send_notifies(RkWorkerContext *ctx)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		bool		started = rk_xact_begin();

		SPI_connect();
		SPI_execute("SET LOCAL lock_timeout = " CppAsString2(RK_NOTIFY_LOCK_TIMEOUT_MS), false, 0);
		SPI_finish();
		for (int i = 0; i < ctx->journal_len; i++)
			notify(&ctx->journal[i]);
		rk_xact_end(started);
		rk_notifies_committed();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		ereport(LOG,
				(errmsg(RK_LOG_PREFIX "NOTIFY replication_kit of %d events not sent: %s",
						ctx->journal_len, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* Write the journal into rk_events; only a primary that is not fenced can. */
void
rk_journal_flush(RkWorkerContext *ctx)
{
	Oid			types[5] = {TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTOID};
	bool		started;

	if (ctx->journal_len == 0 || RecoveryInProgress() || pg_atomic_read_u32(&rk_shared->fenced))
		return;
	started = rk_xact_begin();
	SPI_connect();
	for (int i = 0; i < ctx->journal_len; i++)
	{
		RkJournalEntry *e = &ctx->journal[i];
		Datum		vals[5];

		vals[0] = TimestampTzGetDatum(e->at);
		vals[1] = Int64GetDatum((int64) e->term);
		vals[2] = CStringGetTextDatum(e->kind);
		vals[3] = CStringGetTextDatum(e->node);
		vals[4] = CStringGetTextDatum(e->detail);
		SPI_execute_with_args(psprintf("INSERT INTO %s (at, term, kind, node_name, detail) VALUES ($1, $2, $3, $4, $5)",
									   rk_table("rk_events")),
							  5, types, vals, NULL, false, 0);
	}
	SPI_finish();
	rk_xact_end(started);
	if (started)
		send_notifies(ctx);
	ctx->journal_len = 0;
}

/*
 * What rk_status() shows on this node's own row: why an automatic failover
 * would not happen now, or what this node is waiting for.
 */
void
rk_set_readiness(const char *fmt,...)
{
	va_list		ap;

	LWLockAcquire(rk_shared->lock, LW_EXCLUSIVE);
	va_start(ap, fmt);
	vsnprintf(rk_shared->readiness, RK_REASON_LEN, fmt, ap);
	va_end(ap);
	LWLockRelease(rk_shared->lock);
}
