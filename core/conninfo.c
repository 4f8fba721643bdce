/*-------------------------------------------------------------------------
 *
 * conninfo.c
 *		Connection strings, built in one place with one quoting rule: a
 *		value is written as it is when it is a plain word, and in single
 *		quotes with \\ before every quote and backslash otherwise (libpq's
 *		own rule).  The clone command handed to operators is built here too,
 *		with the shell's quoting around the whole string.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"

#include "core/conninfo.h"
#include "core/settings.h"

/*
 * Append "key=value" to a connection string.  A value that is a plain word
 * (letters, digits and . - _ / : , @) goes as it is; anything else, the
 * empty string included, goes in single quotes with a backslash before
 * every quote and backslash, which is how libpq reads it back.
 */
void
rk_conninfo_append(StringInfo buf, const char *key, const char *value)
{
	bool		plain = value[0] != '\0';

	for (const char *p = value; *p && plain; p++)
		plain = isalnum((unsigned char) *p) || strchr(".-_/:,@", *p) != NULL;

	appendStringInfo(buf, "%s%s=", buf->len > 0 ? " " : "", key);
	if (plain)
	{
		appendStringInfoString(buf, value);
		return;
	}
	appendStringInfoChar(buf, '\'');
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/*
 * The host and port a connection string points at (hostaddr when it names
 * no host; the default port when it names none).  False if it names
 * neither or does not parse.
 */
bool
rk_conninfo_target(const char *conninfo, char **host, int *port)
{
	PQconninfoOption *opts;

	*host = NULL;
	*port = RK_DEFAULT_PG_PORT;
	if (conninfo == NULL || conninfo[0] == '\0' || (opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return false;
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			*host = pstrdup(o->val);
		else if (strcmp(o->keyword, "hostaddr") == 0 && *host == NULL)
			*host = pstrdup(o->val);
		else if (strcmp(o->keyword, "port") == 0)
			*port = atoi(o->val);
	}
	PQconninfoFree(opts);
	return *host != NULL;
}

/*
 * A value for postgresql.conf or postgresql.auto.conf: in single quotes,
 * with every quote and backslash doubled, as ALTER SYSTEM writes it.
 */
char *
rk_conf_quote(const char *value)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '\'');
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(&buf, *p);
		appendStringInfoChar(&buf, *p);
	}
	appendStringInfoChar(&buf, '\'');
	return buf.data;
}

/* A string in single quotes for a POSIX shell. */
char *
rk_shell_quote(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '\'');
	for (; *s; s++)
	{
		if (*s == '\'')
			appendStringInfoString(&buf, "'\\''");
		else
			appendStringInfoChar(&buf, *s);
	}
	appendStringInfoChar(&buf, '\'');
	return buf.data;
}

/*
 * Are the kit's TLS settings other than libpq's defaults?  If not, the kit
 * writes none of them and leaves those an operator wrote in place.
 */
bool
rk_tls_configured(bool node_role)
{
	return strcmp(rk_tls_sslmode(), "prefer") != 0 ||
		(rk_sslrootcert != NULL && rk_sslrootcert[0] != '\0') ||
		strcmp(rk_tls_channel_binding(node_role), "prefer") != 0;
}

/*
 * The kit's TLS settings (replication_kit.sslmode, sslrootcert,
 * channel_binding), for every connection it makes or hands out, when they
 * are set.
 */
void
rk_conninfo_append_tls(StringInfo buf, bool node_role)
{
	rk_conninfo_append_tls_but(buf, node_role, NULL);
}

/*
 * The same, leaving out the keywords `kept` (a conninfo an operator wrote)
 * already has.  NULL: none.
 */
void
rk_conninfo_append_tls_but(StringInfo buf, bool node_role, PQconninfoOption *kept)
{
	bool		has_sslmode = false,
				has_rootcert = false,
				has_binding = false;

	if (!rk_tls_configured(node_role))
		return;
	for (PQconninfoOption *o = kept; o != NULL && o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		has_sslmode |= strcmp(o->keyword, "sslmode") == 0 || strcmp(o->keyword, "requiressl") == 0;
		has_rootcert |= strcmp(o->keyword, "sslrootcert") == 0;
		has_binding |= strcmp(o->keyword, "channel_binding") == 0;
	}
	/* libpq's defaults (prefer) go unwritten. */
	if (!has_sslmode && strcmp(rk_tls_sslmode(), "prefer") != 0)
		rk_conninfo_append(buf, "sslmode", rk_tls_sslmode());
	if (!has_rootcert && rk_sslrootcert != NULL && rk_sslrootcert[0] != '\0')
		rk_conninfo_append(buf, "sslrootcert", rk_sslrootcert);
	if (!has_binding && strcmp(rk_tls_channel_binding(node_role), "prefer") != 0)
		rk_conninfo_append(buf, "channel_binding", rk_tls_channel_binding(node_role));
}

/*
 * Did an operator set the kit's TLS settings (not 'auto')?  Then they rule
 * over whatever TLS keywords a conninfo had; under 'auto', keywords an
 * operator wrote into primary_conninfo (verify-full, say) stay.
 */
bool
rk_tls_explicit(void)
{
	return (rk_sslmode != NULL && strcmp(rk_sslmode, "auto") != 0) ||
		(rk_channel_binding != NULL && strcmp(rk_channel_binding, "auto") != 0) ||
		(rk_sslrootcert != NULL && rk_sslrootcert[0] != '\0');
}

/* Is `keyword` one that rk_conninfo_append_tls() writes? */
bool
rk_conninfo_is_tls_keyword(const char *keyword)
{
	return strcmp(keyword, "sslmode") == 0 || strcmp(keyword, "sslrootcert") == 0 ||
		strcmp(keyword, "channel_binding") == 0 || strcmp(keyword, "requiressl") == 0;
}

/*
 * The one command that clones standby `name` from the primary at host:port
 * through its own slot.  Without a data directory it uses "$PGDATA".  The
 * same text is handed out by rk_add_standby() and in the reports of a
 * standby that can only come back as a fresh clone.
 */
char *
rk_clone_command(const char *datadir, const char *name, const char *host, int port, const char *role)
{
	StringInfoData conn;

	initStringInfo(&conn);
	rk_conninfo_append(&conn, "host", host);
	rk_conninfo_append(&conn, "port", psprintf("%d", port));
	rk_conninfo_append(&conn, "user", role);
	rk_conninfo_append(&conn, "application_name", name);
	rk_conninfo_append_tls(&conn, false);
	return psprintf("pg_basebackup --pgdata=%s --wal-method=stream --write-recovery-conf "
					"--slot=%s --checkpoint=fast --dbname=%s",
					datadir ? rk_shell_quote(datadir) : "\"$PGDATA\"", name, rk_shell_quote(conn.data));
}
