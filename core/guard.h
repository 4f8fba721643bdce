/*-------------------------------------------------------------------------
 *
 * guard.h
 *		The hooks every backend inherits from the postmaster: the commit
 *		guard (no commit, no PREPARE TRANSACTION, no COMMIT or ROLLBACK
 *		PREPARED without the lease) and the replication gate (no standby
 *		streams from a fenced primary but the one taking over).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_GUARD_H
#define RK_GUARD_H

#include "access/xact.h"
#include "nodes/nodes.h"

#include "core/kit.h"

extern bool rk_guard_bypass;

extern bool rk_acknowledges_commits(void);
extern void rk_commit_guard(XactEvent event, void *arg);
extern void rk_guard_utility(Node *parsetree);
extern void rk_guard_utility_done(Node *parsetree);
extern void rk_replication_gate(void *port, int status);
extern void rk_reserve_gate(void *port, int status);

#endif							/* RK_GUARD_H */
