/*-------------------------------------------------------------------------
 *
 * peer.h
 *		One SQL call to a peer node, run concurrently with others under a
 *		single deadline (peer.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_PEER_H
#define RK_PEER_H

#include "access/xlogdefs.h"
#include "libpq-fe.h"

#include "core/kit.h"

typedef enum RkCallPhase
{
	RK_CALL_IDLE,
	RK_CALL_CONNECTING,
	RK_CALL_SENDING,
	RK_CALL_FLUSHING,
	RK_CALL_READING,
	RK_CALL_DONE,
	RK_CALL_FAILED
} RkCallPhase;

typedef struct RkCall
{
	char		host[RK_HOST_LEN];
	int			port;
	const char *user;
	const char *self_name;
	const char *query;
	int			nparams;
	const char *const *params;

	RkCallPhase phase;
	PostgresPollingStatusType poll;
	PGconn	   *conn;
	PGresult   *res;
	char		error[RK_REASON_LEN];
	char		sqlstate[6];	/* a remote ERROR's SQLSTATE, or "" */
	int			peer_index;		/* caller's bookkeeping */
} RkCall;

extern void rk_call_init(RkCall *c, const char *host, int port, const char *user,
						 const char *self_name, const char *query, int nparams,
						 const char *const *params);
/* Called as each call of a batch gets its answer. */
typedef void (*RkCallAnswered) (RkCall *c, void *arg);

extern void rk_calls_run(RkCall *calls, int ncalls, int timeout_ms);
extern void rk_calls_run_notify(RkCall *calls, int ncalls, int timeout_ms,
								RkCallAnswered answered, void *arg);
extern void rk_calls_clear(RkCall *calls, int ncalls);
extern const char *rk_call_value(RkCall *c, const char *column);
extern void rk_calls_disconnect_all(void);
extern void rk_calls_forget_others(const char *const *keep, int nkeep);

extern void rk_call_report(RkCall *c, int elevel, const char *what);

/*
 * What the node-to-node functions answer (extension/peer_api.c), parsed
 * and checked (answers.c).  A caller decides on these typed fields only,
 * never on the words meant for a person.  Each rk_answer_* returns false,
 * with c->error saying why, when the call failed or the answer is not
 * well formed; nothing of a malformed answer is used.
 */
typedef struct RkStateAnswer
{
	char		name[NAMEDATALEN];
	bool		in_recovery;
	TimeLineID	timeline;
	XLogRecPtr	lsn;
	uint64		term;
	char		primary_name[NAMEDATALEN];	/* "" if it names none */
	char		voted_for[NAMEDATALEN]; /* its vote in `term`, or "" */
	long		silence_ms;
	bool		fenced;
	bool		needs_secret;	/* it lacks the node role's secret */
	uint64		failover_timeout_ms;	/* its settings; 0 from an older library */
	uint64		lease_ms;		/* how long its lease runs as a primary */
	TimeLineID	own_timeline;	/* the timeline it is on (`timeline` may be the parent
								 * of its own unelected one); 0 from an older library */
	int			pause_state;	/* 1 paused, 0 not, -1 from an older library */
	uint64		pause_id;
} RkStateAnswer;

/* Why a vote was refused: a fixed vocabulary, sent as text. */
typedef enum RkRefusal
{
	RK_REFUSAL_NONE,			/* granted */
	RK_REFUSAL_OLD_TERM,		/* the voter is in a newer term, or voted in this one */
	RK_REFUSAL_NOT_STANDBY,		/* the voter is a primary */
	RK_REFUSAL_PRIMARY_CONTACT, /* the voter had contact with the primary too recently */
	RK_REFUSAL_RECEIVES_WAL,	/* the voter still receives WAL */
	RK_REFUSAL_RECENT_VOTE,		/* the voter voted for another node too recently */
	RK_REFUSAL_MORE_WAL,		/* the voter has more WAL than the candidate */
	RK_REFUSAL_WAL_UNKNOWN,		/* the voter has not finished replaying its local WAL */
	RK_REFUSAL_PAUSED,			/* an automatic election while the voter holds the cluster paused */
	RK_REFUSAL_UNKNOWN			/* a code this node does not know */
} RkRefusal;

typedef struct RkVoteAnswer
{
	bool		granted;
	RkRefusal	refusal;
	uint64		term;
	TimeLineID	timeline;
	XLogRecPtr	lsn;
	char		reason[RK_REASON_LEN];	/* for people: the log and rk_failover() */
} RkVoteAnswer;

typedef struct RkFenceAnswer
{
	bool		was_primary;
	XLogRecPtr	lsn;
	TimeLineID	timeline;
} RkFenceAnswer;

typedef struct RkFailoverAnswer
{
	bool		ok;
	bool		forced_loss;	/* promoted past the majority or the synchronous quorum */
	char	   *result;			/* for people */
} RkFailoverAnswer;

extern const char *rk_refusal_code(RkRefusal r);
extern bool rk_answer_state(RkCall *c, RkStateAnswer *a);
extern bool rk_answer_vote(RkCall *c, RkVoteAnswer *a);
extern bool rk_answer_fence(RkCall *c, RkFenceAnswer *a);
extern bool rk_answer_failover(RkCall *c, RkFailoverAnswer *a);

#endif							/* RK_PEER_H */
