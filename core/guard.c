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
 * The guard looks a second time once the commit is durable, after the wait
 * for the synchronous standbys and before the client is told.  A primary
 * paused through an election can resume with backends waiting there; a
 * standby that still streams from it may then release them although a new
 * primary, without those commits, was elected meanwhile.  And a wait that
 * was cancelled releases a commit no standby holds.  In both cases the
 * outcome must not reach the client as a success: the session is closed
 * instead, so the client knows the outcome is unknown.  The same holds for
 * PREPARE TRANSACTION, which waits for the standbys too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "storage/lwlock.h"
#include "tcop/dest.h"
#include "utils/acl.h"
#include "utils/timestamp.h"

#include "core/compat.h"
#include "core/settings.h"

#include "core/guard.h"
#include "core/local.h"
#include "core/shmem.h"

/* Set by the kit's own administrative functions, which must work while fenced. */
bool		rk_guard_bypass = false;

/*
 * A commit of this transaction is to be checked again once it is durable:
 * set when the guard let it pass, with the end of the record to check for
 * a COMMIT PREPARED (an ordinary commit's is XactLastCommitEnd).
 */
static bool ack_check_pending = false;
static XLogRecPtr ack_check_lsn = InvalidXLogRecPtr;

/*
 * Did PostgreSQL wait for the synchronous standbys at all?  A commit whose
 * transaction wrote no WAL before its commit record (it touched only
 * temporary or unlogged tables) is not waited for: nothing of it needs a
 * standby.  PREPARE TRANSACTION and COMMIT PREPARED always wait.
 */
static bool ack_sync_waited = false;

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
 * Did this commit's wait for the synchronous standbys end before they had
 * it?  A cancel (or a statement timeout) ends the wait and PostgreSQL
 * acknowledges the commit with a warning; no standby may hold it.  When
 * the synchronous list was emptied meanwhile, the waiters are released on
 * purpose and that is no cut-short wait.
 */
static bool
sync_wait_cut_short(XLogRecPtr commit_end)
{
	int			mode;
	XLogRecPtr	released;

	if (!SyncRepRequested() || XLogRecPtrIsInvalid(commit_end) || !rk_sync_wait_applies())
		return false;
	switch (synchronous_commit)
	{
		case SYNCHRONOUS_COMMIT_REMOTE_WRITE:
			mode = SYNC_REP_WAIT_WRITE;
			break;
		case SYNCHRONOUS_COMMIT_REMOTE_APPLY:
			mode = SYNC_REP_WAIT_APPLY;
			break;
		default:
			mode = SYNC_REP_WAIT_FLUSH;
			break;
	}
	LWLockAcquire(SyncRepLock, LW_SHARED);
	released = WalSndCtl->lsn[mode];
	LWLockRelease(SyncRepLock);
	return released < commit_end;
}

/*
 * The commit (or the PREPARE TRANSACTION) is durable here; it is
 * acknowledged only if this node still holds its lease and the synchronous
 * standbys have it.  Otherwise the client must not learn of it as a
 * success: its connection is closed before the command's completion can be
 * sent, and the server log says why.  The transaction stays committed on
 * this node (nothing can undo it now); a failover may or may not keep it,
 * and the client knows it must look.  Nothing here may raise an ERROR or
 * block: the transaction is already committed and holds its locks.
 */
static void
confirm_acknowledgement(XLogRecPtr commit_end)
{
	const char *why;

	if (!rk_acknowledges_commits())
		why = "this primary lost its lease or was fenced while the commit waited for its standbys";
	else if (ack_sync_waited && sync_wait_cut_short(commit_end))
		why = "the wait for the synchronous standbys ended before they confirmed it";
	else
		return;

	/*
	 * Nothing may reach the client from here on: not even a warning, since
	 * sending one flushes the output buffer, and with the extended protocol
	 * that already holds the command's completion.  The reason goes to the
	 * server log only; the client sees its connection closed.
	 */
	ereport(LOG_SERVER_ONLY,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg(RK_LOG_PREFIX "the commit at %X/%X is not acknowledged: %s",
					LSN_FORMAT_ARGS(commit_end), why),
			 errdetail("The transaction is committed on this node, but a failover may lose it. The connection is closed so that the client does not take it for acknowledged.")));
	if (MyBackendType != B_BACKEND || MyProcPort == NULL || whereToSendOutput != DestRemote)
		return;
	(void) shutdown(MyProcPort->sock, SHUT_RDWR);
	/* The session ends at its next interrupt check, after the commit. */
	ClientConnectionLost = 1;
	InterruptPending = 1;
}

/*
 * The commit guard.  A transaction that wrote something is checked just
 * before it commits and just before it is prepared for two-phase commit:
 * a prepared transaction is as durable as a commit, and its later COMMIT
 * PREPARED (which has no transaction id of its own) is checked by
 * rk_guard_utility.  Once committed, it is checked again
 * (confirm_acknowledgement) before the client can hear of it.
 */
void
rk_commit_guard(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
				return;
			guard_check(event == XACT_EVENT_PRE_PREPARE ? "prepare a transaction" : "commit");
			if (rk_shared != NULL && !rk_guard_bypass && !RecoveryInProgress())
			{
				ack_check_pending = true;
				/* As RecordTransactionCommit decides whether to wait. */
				ack_sync_waited = event == XACT_EVENT_PRE_PREPARE || XactLastRecEnd != InvalidXLogRecPtr;
			}
			return;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			if (ack_check_pending)
			{
				XLogRecPtr	lsn;

				/*
				 * The end of the commit record; for a PREPARE TRANSACTION
				 * (whose end is no longer kept here) one past the start of
				 * its record, which a standby that has it is beyond.
				 */
				if (event == XACT_EVENT_PREPARE)
					lsn = ProcLastRecPtr + 1;
				else
					lsn = XLogRecPtrIsInvalid(ack_check_lsn) ? XactLastCommitEnd : ack_check_lsn;
				ack_check_pending = false;
				ack_check_lsn = InvalidXLogRecPtr;
				confirm_acknowledgement(lsn);
			}
			rk_guard_bypass = false;
			return;
		case XACT_EVENT_ABORT:
			ack_check_pending = false;
			ack_check_lsn = InvalidXLogRecPtr;
			rk_guard_bypass = false;
			return;
		default:
			return;
	}
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
 * After a COMMIT PREPARED ran: its commit record is durable and was waited
 * for; the transaction the statement ran in checks it again when it
 * commits.  XactLastRecEnd is that record's end until then.
 */
void
rk_guard_utility_done(Node *parsetree)
{
	if (parsetree == NULL || !IsA(parsetree, TransactionStmt) ||
		((TransactionStmt *) parsetree)->kind != TRANS_STMT_COMMIT_PREPARED)
		return;
	if (rk_shared == NULL || rk_guard_bypass || RecoveryInProgress())
		return;
	ack_check_pending = true;
	ack_check_lsn = XactLastRecEnd;
	ack_sync_waited = true;
}

/*
 * ClientAuthentication_hook: the last replication_kit.reserved_connections
 * backend slots (above PostgreSQL's own reserve) are kept for the nodes'
 * role and superusers.  Clients that fill max_connections on a standby
 * would otherwise keep the primary from renewing its lease there, and on a
 * primary keep the standbys from telling a live primary from a dead one.
 * WAL senders have slots of their own and are not counted.
 */
void
rk_reserve_gate(void *p, int status)
{
	Port	   *port = (Port *) p;
	Oid			role;
	/* Never more than half of what ordinary clients could have. */
	int			reserve = Min(rk_reserved_connections, (MaxConnections - RK_PG_RESERVED_SLOTS) / 2);

	if (status != STATUS_OK || am_walsender || reserve <= 0 ||
		rk_have_free_procs(reserve + RK_PG_RESERVED_SLOTS))
		return;
	if (port->user_name != NULL && strcmp(port->user_name, RK_NODE_ROLE) == 0)
		return;
	/*
	 * Superusers, and roles with REPLICATION: a clone that has no node
	 * secret yet, and a cluster from before 1.3, probe as the replication
	 * role.  (Only shared catalogs can be read here: the database is not
	 * open yet.)
	 */
	role = port->user_name != NULL ? get_role_oid(port->user_name, true) : InvalidOid;
	if (OidIsValid(role) && (superuser_arg(role) || has_rolreplication(role)))
		return;
	ereport(FATAL,
			(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
			 errmsg("remaining connection slots are reserved for replication_kit's nodes"),
			 errdetail("replication_kit.reserved_connections = %d slots are kept for the nodes' probes and votes.",
					   rk_reserved_connections),
			 errhint("Raise max_connections, or use a connection pooler.")));
}

/*
 * ClientAuthentication_hook: a fenced primary lets no standby but the one
 * it is handing over to start streaming from it.  A test's simulated
 * partition cuts replication from the nodes on the other side too, and
 * (with 'rk_rejoin' in the list) the connections of a rewind.
 */
void
rk_replication_gate(void *p, int status)
{
	Port	   *port = (Port *) p;
	char		target[NAMEDATALEN];

	if (status != STATUS_OK || rk_shared == NULL)
		return;
	/* A test cuts a rewind off from its source: simulate_partition = 'rk_rejoin'. */
	if (!am_walsender)
	{
		if (port->application_name != NULL && strcmp(port->application_name, "rk_rejoin") == 0 &&
			rk_partitioned_from("rk_rejoin"))
			ereport(FATAL,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("connection from rk_rejoin refused"),
					 errdetail("Rewinds from this node are cut off by replication_kit.simulate_partition.")));
		return;
	}
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
