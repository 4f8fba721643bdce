/*-------------------------------------------------------------------------
 *
 * extension.h
 *		What the SQL-callable functions share among themselves: the checks
 *		every one makes first, the pg_hba.conf editor, and the hand-over of
 *		a manual failover to this node's worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_EXTENSION_H
#define RK_EXTENSION_H

#include "core/kit.h"

/* checks.c */
extern void rk_require_preloaded(void);
extern void rk_require_superuser(const char *funcname);
extern void rk_require_primary(const char *funcname);
extern void rk_require_not_in_transaction_block(const char *funcname);

/* hba.c: pg_hba.conf lines owned by the kit */
typedef struct RkHbaEdit
{
	char	   *path;
	char	   *old_content;	/* NULL until a rewrite happened */
	size_t		old_len;
} RkHbaEdit;
extern char *rk_normalize_address(const char *address);
extern bool rk_hba_covers(const char *database, const char *role, const char *host);
extern int	rk_hba_add_lines(RkHbaEdit *edit, const char *role, const char *address,
							 const char *method, const char *owner_tag);
extern int	rk_hba_remove_lines(RkHbaEdit *edit, const char *role,
								const char *address, const char *owner_tag,
								bool *foreign_match);
extern void rk_hba_restore(RkHbaEdit *edit);

/* peer_api.c */
extern bool rk_local_failover(bool force, bool dry_run, bool planned, char **result,
							  bool *forced_loss);

#endif							/* RK_EXTENSION_H */
