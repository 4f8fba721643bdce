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

#include "libpq-fe.h"

#include "replication_kit.h"

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

#endif							/* RK_PEER_H */
