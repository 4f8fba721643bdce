/*-------------------------------------------------------------------------
 *
 * worker.h
 *		What _PG_init needs of the worker side: registering the background
 *		worker, and the fence at start, run in the postmaster before it
 *		accepts a connection.  Nothing in extension/ includes this header
 *		but the module's entry point.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_WORKER_H
#define RK_WORKER_H

#include "core/kit.h"

extern void rk_register_worker(void);
PGDLLEXPORT void rk_worker_main(Datum main_arg);
extern void rk_register_http_worker(void);
PGDLLEXPORT void rk_http_main(Datum main_arg);
extern void rk_fence_at_start(void);
extern void rk_rejoin_resume_at_start(void);
extern void rk_start_on_own_timeline_if_diverged(void);

#endif							/* RK_WORKER_H */
