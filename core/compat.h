/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every difference between PostgreSQL 13 and 18 that replication_kit
 *		cares about, in one place, so that the rest of the code reads as if
 *		there were a single server version.
 *
 * 13, 15 and 18 are built and tested (tools/test --pg N); 14, 16 and 17
 * follow from the same version checks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_COMPAT_H
#define RK_COMPAT_H

#include "postgres.h"

#include "access/xlog.h"
#include "nodes/parsenodes.h"
#include "utils/guc.h"

#if PG_VERSION_NUM < 130000
#error "replication_kit needs PostgreSQL 13 or later"
#endif

#if PG_VERSION_NUM >= 150000
#include "access/xlogrecovery.h"
#endif

/* The two halves of an LSN for "%X/%X": a macro since 14. */
#ifndef LSN_FORMAT_ARGS
#define LSN_FORMAT_ARGS(lsn) ((uint32) ((lsn) >> 32)), ((uint32) (lsn))
#endif

/* get_role_password() and plain_crypt_verify() take a const logdetail from 15 on. */
#if PG_VERSION_NUM >= 150000
typedef const char *rk_logdetail;
#else
typedef char *rk_logdetail;
#endif

/* A string constant for a hand-built ALTER SYSTEM statement. */
static inline Node *
rk_make_string_const(const char *str)
{
	A_Const    *n = makeNode(A_Const);

#if PG_VERSION_NUM >= 150000
	n->val.sval.type = T_String;
	n->val.sval.sval = pstrdup(str);
#else
	n->val.type = T_String;
	n->val.val.str = pstrdup(str);
#endif
	n->location = -1;
	return (Node *) n;
}

/* Reserving the GUC prefix got its present name in 15. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * Before 15 a process that is not a client's backend signals the listeners
 * of what it NOTIFY'd itself, after the commit; since 15 the commit does.
 */
#if PG_VERSION_NUM < 150000
#define rk_notifies_committed() ProcessCompletedNotifies()
#else
#define rk_notifies_committed() ((void) 0)
#endif

/*
 * Shared memory is requested from shmem_request_hook since 15; before that
 * from _PG_init directly.
 */
#if PG_VERSION_NUM >= 150000
#define RK_HAVE_SHMEM_REQUEST_HOOK 1
#endif

/*
 * PostgreSQL's own pg_hba.conf parser is callable from extensions since 15
 * (hbafuncs.c).  In 15 tokenize_auth_file returns the memory context that
 * holds the lines; from 16 open_auth_file makes that context and
 * free_auth_file closes the file and deletes it.  rk_hba_open,
 * rk_hba_tokenize and rk_hba_close hide that: open returns NULL with errno
 * set, tokenize returns what close frees.
 */
#if PG_VERSION_NUM >= 150000
#define RK_HAVE_HBA_PARSER 1
#include "libpq/hba.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#if PG_VERSION_NUM >= 160000
static inline FILE *
rk_hba_open(const char *path)
{
	char	   *err = NULL;

	return open_auth_file(path, DEBUG3, 0, &err);
}

static inline MemoryContext
rk_hba_tokenize(const char *path, FILE *f, List **lines)
{
	tokenize_auth_file(path, f, lines, DEBUG3, 0);
	return NULL;
}

static inline void
rk_hba_close(FILE *f, MemoryContext lines_cxt)
{
	free_auth_file(f, 0);
}
#else
static inline FILE *
rk_hba_open(const char *path)
{
	return AllocateFile(path, "r");
}

static inline MemoryContext
rk_hba_tokenize(const char *path, FILE *f, List **lines)
{
	return tokenize_auth_file(path, f, lines, DEBUG3);
}

static inline void
rk_hba_close(FILE *f, MemoryContext lines_cxt)
{
	MemoryContextDelete(lines_cxt);
	FreeFile(f);
}
#endif
#endif

/* The timeline this server writes (primary) or replays (standby). */
static inline TimeLineID
rk_current_timeline(void)
{
	TimeLineID	tli;

	if (RecoveryInProgress())
		(void) GetXLogReplayRecPtr(&tli);
	else
	{
#if PG_VERSION_NUM >= 150000
		tli = GetWALInsertionTimeLine();
#else
		tli = ThisTimeLineID;
		if (tli == 0)
			(void) GetXLogReplayRecPtr(&tli);
#endif
	}
	return tli;
}

/* WAL flushed to disk on a primary; the timeline argument came in 15. */
#if PG_VERSION_NUM >= 150000
#define rk_flush_lsn() GetFlushRecPtr(NULL)
#else
#define rk_flush_lsn() GetFlushRecPtr()
#endif

/* Materialized set-returning functions: a helper since 15. */
#if PG_VERSION_NUM < 150000
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"
static inline void
InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	tupdesc;
	MemoryContext old;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(old);
}
#endif

/*
 * ProcessUtility_hook got a readOnlyTree argument in 14.  RK_UTILITY_ARGS
 * declares the hook's parameters, RK_UTILITY_PASS passes them on.
 */
#include "tcop/utility.h"
#if PG_VERSION_NUM >= 140000
#define RK_UTILITY_ARGS \
	PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, \
	ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv, \
	DestReceiver *dest, QueryCompletion *qc
#define RK_UTILITY_PASS \
	pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc
#else
#define RK_UTILITY_ARGS \
	PlannedStmt *pstmt, const char *queryString, \
	ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv, \
	DestReceiver *dest, QueryCompletion *qc
#define RK_UTILITY_PASS \
	pstmt, queryString, context, params, queryEnv, dest, qc
#endif

/*
 * Whether commits wait for synchronous standbys, as the checkpointer last
 * published it to the backends.  A boolean in older minor releases and a
 * set of flags in newer ones of the same majors: told apart by the flag's
 * macro, since PG_VERSION_NUM cannot.
 */
#include "replication/walsender_private.h"
static inline bool
rk_sync_standbys_defined(void)
{
	if (WalSndCtl == NULL)
		return false;
#ifdef SYNC_STANDBY_DEFINED
	return (WalSndCtl->sync_standbys_status & SYNC_STANDBY_DEFINED) != 0;
#else
	return WalSndCtl->sync_standbys_defined;
#endif
}

/*
 * Does a commit wait for synchronous standbys now?  What the checkpointer
 * published, or, in minors that mark whether it has published anything
 * yet, the setting itself until then (as SyncRepWaitForLSN decides).
 */
#include "replication/syncrep.h"
static inline bool
rk_sync_wait_applies(void)
{
	if (WalSndCtl == NULL)
		return false;
#ifdef SYNC_STANDBY_INIT
	if ((WalSndCtl->sync_standbys_status & SYNC_STANDBY_INIT) == 0)
		return SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0';
#endif
	return rk_sync_standbys_defined();
}

/*
 * Free backend slots, and the slots PostgreSQL itself holds back for
 * superusers (and, from 16, for pg_use_reserved_connections): the count
 * grew an out argument and the reserve a second setting in 16.
 */
#include "postmaster/postmaster.h"
#include "storage/proc.h"
static inline bool
rk_have_free_procs(int n)
{
#if PG_VERSION_NUM >= 160000
	int			nfree;

	return HaveNFreeProcs(n, &nfree);
#else
	return HaveNFreeProcs(n);
#endif
}
#if PG_VERSION_NUM >= 160000
#define RK_PG_RESERVED_SLOTS (SuperuserReservedConnections + ReservedConnections)
#else
#define RK_PG_RESERVED_SLOTS ReservedBackends
#endif

/* Wait event sets belong to a resource owner since 17. */
#include "storage/latch.h"
#if PG_VERSION_NUM >= 170000
#include "utils/resowner.h"
#define rk_create_wait_event_set(n) CreateWaitEventSet(CurrentResourceOwner, (n))
#else
#define rk_create_wait_event_set(n) CreateWaitEventSet(CurrentMemoryContext, (n))
#endif

#endif							/* RK_COMPAT_H */
