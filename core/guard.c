/*-------------------------------------------------------------------------
 *
 * guard.c
 *		The commit guard and the replication gate, hooks that every backend
 *		inherits from the postmaster.
 *
 * The commit guard is an XactCallback: on a primary of a cluster of two or
 * more it lets a transaction that wrote commit only while the node holds
 * its lease, so a primary that lost its majority (or was SIGSTOPped through
 * an election) acknowledges nothing once a new primary can exist, whatever
 * the session's synchronous_commit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "libpq/libpq-be.h"
#include "nodes/parsenodes.h"
#include "replication/walsender.h"
#include "utils/timestamp.h"

#include "core/guard.h"
#include "core/local.h"
#include "core/shmem.h"

/* Set by the kit's own administrative functions, which must work while fenced. */
bool		rk_guard_bypass = false;

/*
 * May this node make a transaction's outcome durable now?  Only on a
 * primary the worker (or the state file at startup) marked as needing a
 * lease; everything else costs two atomic reads.  `what` names the step
 * refused ("commit", "prepare a transaction", ...).
 */
static void
guard_check(const char *what)
{
	int64		until;

	if (rk_shared == NULL || rk_guard_bypass || RecoveryInProgress())
		return;
	if (pg_atomic_read_u32(&rk_shared->guard_enforced) == 0 &&
		pg_atomic_read_u32(&rk_shared->fenced) == 0)
		return;

	if (pg_atomic_read_u32(&rk_shared->fenced) != 0 || pg_atomic_read_u32(&rk_shared->elected) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot %s: this node is fenced and no longer the primary", what),
				 errdetail("Another node was made the primary in a newer term; this node will rejoin as its standby."),
				 errhint("Reconnect with target_session_attrs=read-write to reach the current primary.")));

	until = (int64) pg_atomic_read_u64(&rk_shared->lease_until);
	if (rk_monotonic_ms() >= until)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot %s: this primary has not heard from a majority of the cluster", what),
				 errdetail("A primary commits only while a majority of the registered nodes answers it (replication_kit.fence_timeout); another node may be promoted."),
				 errhint("Check rk_status(); reconnect with target_session_attrs=read-write to reach the current primary.")));
}

/*
 * Would this primary acknowledge a commit now?  Not when it is fenced, nor
 * when its lease has run out: a primary that cannot renew its lease (its
 * worker stuck on a lock or an fsync, its standbys unable to answer) tells
 * the standbys that it is not a primary (rk_peer_state's "fenced"), so
 * that they elect another instead of waiting for it forever.
 */
bool
rk_acknowledges_commits(void)
{
	if (rk_shared == NULL || pg_atomic_read_u32(&rk_shared->fenced) != 0)
		return false;
	if (pg_atomic_read_u32(&rk_shared->guard_enforced) == 0)
		return true;
	if (pg_atomic_read_u32(&rk_shared->elected) == 0)
		return false;
	return rk_monotonic_ms() < (int64) pg_atomic_read_u64(&rk_shared->lease_until);
}

/*
 * The commit guard.  A transaction that wrote something is checked just
 * before it commits and just before it is prepared for two-phase commit:
 * a prepared transaction is as durable as a commit, and its later COMMIT
 * PREPARED (which has no transaction id of its own) is checked by
 * rk_guard_utility.
 */
void
rk_commit_guard(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
	{
		rk_guard_bypass = false;
		return;
	}
	if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PRE_PREPARE)
		return;
	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	guard_check(event == XACT_EVENT_PRE_PREPARE ? "prepare a transaction" : "commit");
}

/*
 * COMMIT PREPARED and ROLLBACK PREPARED finish a transaction prepared
 * earlier, from a session that has written nothing itself, so the commit
 * guard never sees them.  On a fenced or lease-less primary both are
 * refused: a commit would be acknowledged where it may be lost, and a
 * rollback would decide, on a node that may be replaced, the outcome of a
 * transaction the new primary also holds.
 */
void
rk_guard_utility(Node *parsetree)
{
	TransactionStmt *stmt;

	if (parsetree == NULL || !IsA(parsetree, TransactionStmt))
		return;
	stmt = (TransactionStmt *) parsetree;
	if (stmt->kind == TRANS_STMT_COMMIT_PREPARED)
		guard_check("commit a prepared transaction");
	else if (stmt->kind == TRANS_STMT_ROLLBACK_PREPARED)
		guard_check("roll back a prepared transaction");
}

/*
 * ClientAuthentication_hook: a fenced primary lets no standby but the one
 * it is handing over to start streaming from it.  A test's simulated
 * partition cuts replication from the nodes on the other side too.
 */
void
rk_replication_gate(void *p, int status)
{
	Port	   *port = (Port *) p;
	char		target[NAMEDATALEN];

	if (status != STATUS_OK || !am_walsender || rk_shared == NULL)
		return;
	if (rk_partitioned_from(port->application_name))
		ereport(FATAL,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("replication connection from node \"%s\" refused", port->application_name),
				 errdetail("The node is cut off from this one by replication_kit.simulate_partition.")));
	if (pg_atomic_read_u32(&rk_shared->fenced) == 0)
		return;
	LWLockAcquire(rk_shared->lock, LW_SHARED);
	strlcpy(target, rk_shared->fence_target, NAMEDATALEN);
	LWLockRelease(rk_shared->lock);
	if (target[0] != '\0' && port->application_name != NULL &&
		strcmp(port->application_name, target) == 0)
		return;
	ereport(FATAL,
			(errcode(ERRCODE_CANNOT_CONNECT_NOW),
			 errmsg("this node is fenced and no longer the primary"),
			 errdetail("Another node is taking over; standbys must stream from it."),
			 errhint("The replication_kit worker re-points this standby by itself.")));
}
