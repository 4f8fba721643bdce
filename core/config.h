/*-------------------------------------------------------------------------
 *
 * config.h
 *		Server settings changed the way ALTER SYSTEM does, and read back;
 *		a change run with an undo step; the kit's own commits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_CONFIG_H
#define RK_CONFIG_H

#include "core/durable.h"
#include "core/kit.h"

extern void rk_alter_system(const char *name, const char *value);
extern void rk_reload_config(void);
extern char *rk_setting_value(const char *name);
extern char *rk_file_setting_value(const char *name);
extern void rk_guarded(void (*steps) (void *), void (*undo) (void *), void *arg);
extern void rk_lock_config_files(void);
extern char *rk_auto_conf_snapshot(size_t *len);
extern void rk_auto_conf_restore(const char *content, size_t len);
extern void rk_commit_locally(void);

#endif							/* RK_CONFIG_H */
