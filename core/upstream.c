/*-------------------------------------------------------------------------
 *
 * upstream.c
 *		Whom this standby streams from: the primary_conninfo the kit writes,
 *		the re-point itself, and the cut a voter makes before it grants a
 *		vote.
 *
 * A standby in a synchronous list acknowledges commits to whatever primary
 * it streams from.  Once it has voted for a new primary it must stop doing
 * that for the old one: a primary paused through the election and then
 * resumed would otherwise get its waiting commits acknowledged by a voter
 * that is about to follow the winner, and the winner's timeline does not
 * hold them.  So a voter points its WAL receiver at the candidate, and
 * waits until the old stream is gone, before it says "granted".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "libpq-fe.h"
#include "miscadmin.h"
#include "replication/walreceiver.h"
#include "storage/spin.h"
#include "utils/guc.h"

#include "core/config.h"
#include "core/conninfo.h"
#include "core/credentials.h"
#include "core/upstream.h"

/*
 * primary_conninfo for streaming from host:port: the current one with host,
 * port and application_name replaced (so a passfile or SSL settings stay)
 * and any password left out, or a new one with the kit's role; the
 * password comes from the kit's password file.
 */
/* A TLS keyword at least as strong as what the kit would write: keep it. */
static bool
tls_keyword_strong(const PQconninfoOption *o)
{
	if (strcmp(o->keyword, "sslrootcert") == 0)
		return true;
	if (strcmp(o->keyword, "sslmode") == 0)
		return strcmp(o->val, "require") == 0 || strncmp(o->val, "verify-", 7) == 0;
	if (strcmp(o->keyword, "channel_binding") == 0)
		return strcmp(o->val, "require") == 0;
	return false;
}

char *
rk_upstream_conninfo(const char *host, int port, const char *self, const char *role)
{
	const char *cur = GetConfigOption("primary_conninfo", true, false);
	PQconninfoOption *opts = (cur && cur[0]) ? PQconninfoParse(cur, NULL) : NULL;
	PQconninfoOption *kept = NULL;
	StringInfoData buf;
	bool		have_user = false;
	bool		have_secret = false;

	if (role != NULL && role[0] == '\0')
		role = NULL;
	initStringInfo(&buf);
	rk_conninfo_append(&buf, "host", host);
	rk_conninfo_append(&buf, "port", psprintf("%d", port));
	rk_conninfo_append(&buf, "application_name", self);
	if (opts)
	{
		for (PQconninfoOption *o = opts; o->keyword; o++)
		{
			if (o->val == NULL || o->val[0] == '\0' ||
				strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
				strcmp(o->keyword, "port") == 0 || strcmp(o->keyword, "application_name") == 0)
				continue;
			/* A password in primary_conninfo is printed in the server log on every change. */
			if (strcmp(o->keyword, "password") == 0)
				continue;
			/*
			 * TLS keywords: the kit's settings replace them when an operator
			 * set those; under 'auto' an operator's stronger choice (verify-
			 * full, a CA, channel binding) stays, a weaker one goes.
			 */
			if (rk_conninfo_is_tls_keyword(o->keyword) &&
				(rk_tls_explicit() || (rk_tls_configured(false) && !tls_keyword_strong(o))))
				continue;
			/* The kit's current replication role, if it names one (it may have been renamed). */
			if (strcmp(o->keyword, "user") == 0 && role != NULL)
				continue;
			if (strcmp(o->keyword, "user") == 0)
				have_user = true;
			if (strcmp(o->keyword, "passfile") == 0)
				have_secret = true;
			rk_conninfo_append(&buf, o->keyword, o->val);
		}
		kept = PQconninfoParse(buf.data, NULL);
		PQconninfoFree(opts);
	}
	if (!have_user && role != NULL)
		rk_conninfo_append(&buf, "user", role);
	if (!have_secret)
		rk_conninfo_append(&buf, "passfile", psprintf("%s/%s", DataDir, RK_PASS_FILE));
	rk_conninfo_append_tls_but(&buf, false, kept);
	if (kept)
		PQconninfoFree(kept);
	return buf.data;
}

/*
 * Point this standby at host:port: primary_conninfo and primary_slot_name
 * with ALTER SYSTEM, then a reload.  The startup process notices the new
 * conninfo and restarts the WAL receiver; no server restart.  The caller
 * is in a transaction.
 */
void
rk_point_upstream(const char *host, int port, const char *self, const char *role)
{
	const char *slot = GetConfigOption("primary_slot_name", true, false);

	rk_alter_system("primary_conninfo", rk_upstream_conninfo(host, port, self, role));
	if (slot == NULL || strcmp(slot, self) != 0)
		rk_alter_system("primary_slot_name", self);
	rk_reload_config();
}

/*
 * Stream from another standby, without a slot (the kit keeps slots only on
 * a primary and a candidate): to catch up with the WAL of a standby that
 * has more but does not take over itself.  Following a primary again sets
 * the slot back (rk_point_upstream).
 */
void
rk_point_catch_up(const char *host, int port, const char *self, const char *role)
{
	rk_alter_system("primary_conninfo", rk_upstream_conninfo(host, port, self, role));
	rk_alter_system("primary_slot_name", NULL);
	rk_reload_config();
}

/*
 * A clone made with pg_basebackup -R has the password it logged in with in
 * primary_conninfo, where every change of the setting would print it in
 * the server log.  Once the password file can stand in for it (it has a
 * line for that user), point the standby at the same upstream without it.
 * The caller is in a transaction.  Returns true if it did.
 */
bool
rk_upstream_drop_password(const char *self, const char *role)
{
	const char *cur = GetConfigOption("primary_conninfo", true, false);
	PQconninfoOption *opts = (cur && cur[0]) ? PQconninfoParse(cur, NULL) : NULL;
	char	   *password = NULL;
	char	   *user = NULL;
	char	   *host;
	int			port;

	if (opts == NULL)
		return false;
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			password = pstrdup(o->val);
		if (strcmp(o->keyword, "user") == 0 && o->val && o->val[0])
			user = pstrdup(o->val);
	}
	PQconninfoFree(opts);
	if (password == NULL || !rk_conninfo_target(cur, &host, &port))
		return false;

	/*
	 * A replication role set from a SCRAM verifier has no password in
	 * rk_credentials: the one the clone logged in with goes into the
	 * password file (if it is the kit's role's), and from there to the
	 * other nodes that need it (rk_peer_credentials).
	 */
	if (!rk_passfile_has_role(user ? user : role) &&
		!(role != NULL && strcmp(user ? user : role, role) == 0 && rk_credentials_take(role, password)))
		return false;
	memset(password, 0, strlen(password));
	rk_point_upstream(host, port, self, role);
	return true;
}

/*
 * Does the WAL receiver (the running one, or the one the startup process
 * last asked for) stream from host:port?
 */
bool
rk_receiver_targets(const char *host, int port, pid_t *pid)
{
	WalRcvData *walrcv = WalRcv;
	char		conninfo[MAXCONNINFO];
	char	   *h;
	int			p;

	*pid = 0;
	if (walrcv == NULL)
		return false;
	SpinLockAcquire(&walrcv->mutex);
	*pid = walrcv->pid;
	strlcpy(conninfo, (char *) walrcv->conninfo, sizeof(conninfo));
	SpinLockRelease(&walrcv->mutex);
	return rk_conninfo_target(conninfo, &h, &p) && strcmp(h, host) == 0 && p == port;
}

/*
 * Make sure no WAL receiver of this node streams from anywhere but
 * host:port, within `timeout_ms`.  The primary_conninfo must already point
 * there (rk_point_upstream).  The startup process restarts its WAL
 * receiver when it rereads the changed setting; if the old receiver is
 * still up after a short while (the startup process busy replaying), it
 * is told to stop.  With no receiver running, the startup process starts
 * the next one from the new setting once it has reread it, which it does
 * at once on the reload signal: a short grace covers that.  Returns false
 * if that could not be confirmed in time.
 */
bool
rk_end_other_streams(const char *host, int port, int timeout_ms)
{
	const int	step_ms = 10;

	for (int waited = 0; waited <= timeout_ms; waited += step_ms)
	{
		pid_t		pid;

		if (rk_receiver_targets(host, port, &pid))
			return true;
		if (pid == 0 && waited >= RK_STREAM_RELOAD_GRACE_MS)
			return true;
		/* Give the startup process a moment to switch by itself. */
		if (pid != 0 && waited >= RK_STREAM_SWITCH_GRACE_MS && waited % RK_STREAM_SWITCH_GRACE_MS == 0)
			(void) kill(pid, SIGTERM);
		pg_usleep(step_ms * 1000L);
		CHECK_FOR_INTERRUPTS();
	}
	return false;
}
