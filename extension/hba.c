/*-------------------------------------------------------------------------
 *
 * hba.c
 *		The pg_hba.conf lines replication_kit adds and removes, and nothing
 *		else: every line the kit writes ends with a marker comment, and the
 *		kit never changes a line without it.
 *
 * An edit is a whole-file rewrite: the new text goes to a temporary file
 * beside pg_hba.conf with the same owner and mode, is fsync'ed, checked
 * with PostgreSQL's own parser (where the server exports it), and only then
 * renamed over the original with durable_rename().  The previous content is
 * kept in memory so that a caller whose later step fails can put it back.
 *
 * For each address the kit allows, it writes two lines: one for physical
 * replication as the replication role, and one for the kit's own database
 * as the node role (RK_NODE_ROLE), which the workers use to probe each
 * other, to vote and to rewind.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "libpq/hba.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "core/config.h"
#include "core/durable.h"
#include "core/registry.h"
#include "core/settings.h"
#include "extension/extension.h"

/* A kit line, split into its fields. */
typedef struct HbaKitLine
{
	char	   *database;
	char	   *role;
	char	   *address;
	char	   *method;
	char	   *owner;			/* node name for a standby's line, "" otherwise */
} HbaKitLine;

static const char *hba_path(void);
static bool parse_kit_line(const char *line, HbaKitLine *out);
static bool parse_any_rule(const char *line, char **type, char **db,
						   char **role, char **addr);
static char *format_kit_line(const char *database, const char *role,
							 const char *address, const char *method,
							 const char *owner_tag);
static void hba_write(const char *path, const char *content, size_t len);
static int	hba_error_count(void);

static const char *
hba_path(void)
{
	return HbaFileName;
}

/*
 * Validate a CIDR or host address and return it in canonical CIDR form
 * (a host address gets /32 or /128).  Only numeric addresses: keywords such
 * as "all" or "samenet" and host names are refused, and so is anything that
 * could smuggle a second field or line into pg_hba.conf.  (One function,
 * though long: it is a single small grammar read left to right, and split
 * up it would hide which input reaches which check.)
 */
char *
rk_normalize_address(const char *address)
{
	char		ip[64];
	const char *slash;
	int			bits;
	int			maxbits;
	unsigned char bytes[16];
	int			family;
	int			nbytes;
	char		canon[INET6_ADDRSTRLEN];

	if (address == NULL || address[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("address must not be empty"),
				 errhint("Give an IPv4 or IPv6 address or network, such as 10.0.0.0/24.")));

	for (const char *p = address; *p; p++)
	{
		if (!(isxdigit((unsigned char) *p) || *p == '.' || *p == ':' || *p == '/'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid address \"%s\"", address),
					 errdetail("An address may contain only hexadecimal digits, dots, colons and one slash; keywords and host names are not accepted."),
					 errhint("Give an IPv4 or IPv6 address or network, such as 10.0.0.0/24.")));
	}

	slash = strchr(address, '/');
	if ((slash ? (size_t) (slash - address) : strlen(address)) >= sizeof(ip))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid address \"%s\"", address)));
	strlcpy(ip, address, slash ? (size_t) (slash - address) + 1 : sizeof(ip));

	if (inet_pton(AF_INET, ip, bytes) == 1)
	{
		family = AF_INET;
		nbytes = 4;
		maxbits = 32;
	}
	else if (inet_pton(AF_INET6, ip, bytes) == 1)
	{
		family = AF_INET6;
		nbytes = 16;
		maxbits = 128;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid address \"%s\"", address),
				 errdetail("\"%s\" is not an IPv4 or IPv6 address.", ip)));

	bits = maxbits;
	if (slash)
	{
		const char *m = slash + 1;
		char	   *end;
		long		v;

		if (*m == '\0' || strlen(m) > 3 || strspn(m, "0123456789") != strlen(m))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid address \"%s\"", address),
					 errdetail("The prefix length after the slash must be a number from 0 to %d.", maxbits)));
		v = strtol(m, &end, 10);
		if (v < 0 || v > maxbits)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid address \"%s\"", address),
					 errdetail("The prefix length must be from 0 to %d for an IPv%d address.",
							   maxbits, family == AF_INET ? 4 : 6)));
		bits = (int) v;
	}

	/* No bits may be set to the right of the mask: say which network was meant. */
	for (int i = 0; i < nbytes; i++)
	{
		int			keep = bits - i * 8;
		unsigned char mask = keep >= 8 ? 0xFF : keep <= 0 ? 0 : (unsigned char) (0xFF << (8 - keep));

		if (bytes[i] & ~mask)
		{
			unsigned char net[16];

			for (int j = 0; j < nbytes; j++)
			{
				int			k = bits - j * 8;

				net[j] = bytes[j] & (k >= 8 ? 0xFF : k <= 0 ? 0 : (unsigned char) (0xFF << (8 - k)));
			}
			inet_ntop(family, net, canon, sizeof(canon));
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid address \"%s\"", address),
					 errdetail("The address has bits set to the right of the /%d mask.", bits),
					 errhint("Did you mean %s/%d?", canon, bits)));
		}
	}

	inet_ntop(family, bytes, canon, sizeof(canon));
	return psprintf("%s/%d", canon, bits);
}

/*
 * The line the kit writes.  Columns are padded like the sample file so that
 * a person reading pg_hba.conf sees them line up.
 */
static char *
format_kit_line(const char *database, const char *role, const char *address,
				const char *method, const char *owner_tag)
{
	/* The kit's database quoted, so that no name is read as a keyword. */
	const char *db = strcmp(database, "replication") == 0 ? database : psprintf("\"%s\"", database);

	return psprintf("%-7s %-15s %-15s %-23s %-15s %s%s%s",
					"host", db, role, address, method, RK_HBA_MARK,
					owner_tag ? " node=" : "", owner_tag ? owner_tag : "");
}

/* Split a kit line; false if it is not one. */
static bool
parse_kit_line(const char *line, HbaKitLine *out)
{
	const char *mark = strstr(line, RK_HBA_MARK);
	char	   *copy;
	char	   *fields[6];
	int			n = 0;
	char	   *tok;
	char	   *save = NULL;
	const char *after;

	if (mark == NULL)
		return false;
	after = mark + strlen(RK_HBA_MARK);
	if (*after != '\0' && *after != ' ' && *after != '\n')
		return false;

	copy = pnstrdup(line, mark - line);
	for (tok = strtok_r(copy, " \t", &save); tok && n < 6; tok = strtok_r(NULL, " \t", &save))
		fields[n++] = tok;
	if (n != 5 || strcmp(fields[0], "host") != 0)
		return false;

	out->database = fields[1];
	if (fields[1][0] == '"' && strlen(fields[1]) >= 2 && fields[1][strlen(fields[1]) - 1] == '"')
		out->database = pnstrdup(fields[1] + 1, strlen(fields[1]) - 2);
	out->role = fields[2];
	out->address = fields[3];
	out->method = fields[4];
	out->owner = "";
	while (*after == ' ')
		after++;
	if (strncmp(after, "node=", 5) == 0)
	{
		size_t		len = strcspn(after + 5, " \n");

		out->owner = pnstrdup(after + 5, len);
	}
	return true;
}

/*
 * The first four fields of any rule line (type, database, role, address),
 * enough to recognise a line of someone else's that the caller asked the
 * kit to remove.  False for comments and blank lines.
 */
static bool
parse_any_rule(const char *line, char **type, char **db, char **role, char **addr)
{
	char	   *copy = pstrdup(line);
	char	   *hash = strchr(copy, '#');
	char	   *save = NULL;
	char	   *f[4];
	int			n = 0;

	if (hash)
		*hash = '\0';
	for (char *tok = strtok_r(copy, " \t", &save); tok && n < 4; tok = strtok_r(NULL, " \t", &save))
		f[n++] = tok;
	if (n < 4)
		return false;
	*type = f[0];
	*db = f[1];
	*role = f[2];
	*addr = f[3];
	return true;
}

/* Number of rules with errors in pg_hba.conf as the server parses it now. */
static int
hba_error_count(void)
{
	int			ret;
	int			count;
	bool		isnull;

	SPI_connect();
	ret = SPI_execute("SELECT count(*)::int4 FROM pg_catalog.pg_hba_file_rules WHERE error IS NOT NULL",
					  true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read pg_hba_file_rules: %s", SPI_result_code_string(ret));
	count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return count;
}

#ifdef RK_HAVE_HBA_PARSER
/*
 * Parse a candidate file with the server's own pg_hba.conf parser and
 * return the number of lines it rejects, with the first message.
 */
static int
hba_parse_errors(const char *path, char **first_error)
{
	MemoryContext parse_cxt;
	MemoryContext old_cxt;
	MemoryContext tok_cxt;
	List	   *lines = NIL;
	ListCell   *lc;
	FILE	   *f;
	int			errors = 0;

	*first_error = NULL;
	parse_cxt = AllocSetContextCreate(CurrentMemoryContext, "replication_kit hba check",
									  ALLOCSET_SMALL_SIZES);
	old_cxt = MemoryContextSwitchTo(parse_cxt);
	f = rk_hba_open(path);
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	tok_cxt = rk_hba_tokenize(path, f, &lines);
	foreach(lc, lines)
	{
		TokenizedAuthLine *tok = (TokenizedAuthLine *) lfirst(lc);

		if (tok->err_msg == NULL && parse_hba_line(tok, DEBUG3) != NULL)
			continue;
		if (errors++ == 0)
			*first_error = psprintf("line %d: %s", tok->line_num,
									tok->err_msg ? tok->err_msg : "invalid line");
	}
	MemoryContextSwitchTo(old_cxt);
	if (*first_error)
		*first_error = pstrdup(*first_error);
	rk_hba_close(f, tok_cxt);
	MemoryContextDelete(parse_cxt);
	return errors;
}
#endif

/*
 * Write `content` over `path` durably, keeping the owner and mode of the
 * file it replaces (pg_hba.conf must stay readable by the server), and refusing (with the original untouched) a text the
 * server's parser finds more errors in than in the original.
 */
static void
hba_write(const char *path, const char *content, size_t len)
{
	char	   *tmp = rk_durable_prepare(path, content, len, RK_MODE_OF_TARGET);

#ifdef RK_HAVE_HBA_PARSER
	{
		char	   *old_error;
		char	   *new_error;
		int			old_errors = hba_parse_errors(path, &old_error);
		int			new_errors = hba_parse_errors(tmp, &new_error);

		if (new_errors > old_errors)
		{
			unlink(tmp);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("the edited pg_hba.conf would not parse; it was left unchanged"),
					 errdetail("%s", new_error ? new_error : "unknown error")));
		}
	}
#endif

	rk_durable_install(tmp, path);
}

/* Remember the current content before the first rewrite of an edit. */
static char *
hba_begin(RkHbaEdit *edit, size_t *len)
{
	char	   *content;

	rk_lock_config_files();
	edit->path = pstrdup(hba_path());
	content = rk_read_whole_file(edit->path, len);
	if (content == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", edit->path)));
	return content;
}

/* Install new content, keeping the old for rk_hba_restore(). */
static void
hba_commit(RkHbaEdit *edit, const char *old, size_t old_len, const char *new_content)
{
	int			errors_before = hba_error_count();

	hba_write(edit->path, new_content, strlen(new_content));
	edit->old_content = (char *) old;
	edit->old_len = old_len;

	/* The server's own view of the new file must not show new errors. */
	if (hba_error_count() > errors_before)
	{
		rk_hba_restore(edit);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("pg_hba_file_rules reports errors in the edited pg_hba.conf; the previous file was restored")));
	}
	rk_reload_config();
}

/*
 * Add the kit's two lines for address: replication as `role` with
 * `method`, and the kit's database as the node role.  They are tagged with
 * owner_tag (a standby's node name) or untagged for rk_allow_replication.
 * A kit line with the same database, role and address but another method
 * is replaced, and so is a line from before 1.3 that let `role` into the
 * kit's database.  Returns the number of lines written (0: nothing to do).
 * (Long because it is one read-modify-write of the whole file: every kit
 * line is looked at once, under one view of the content.)
 */
int
rk_hba_add_lines(RkHbaEdit *edit, const char *role, const char *address,
				 const char *method, const char *owner_tag)
{
	size_t		len;
	char	   *content = hba_begin(edit, &len);
	const char *databases[2] = {"replication", rk_database};
	const char *roles[2] = {role, RK_NODE_ROLE};
	/* The node role always logs in with its secret, never by trust or a certificate. */
	const char *methods[2] = {method, "scram-sha-256"};
	bool		present[2] = {false, false};
	StringInfoData out;
	char	   *line;
	char	   *copy = pstrdup(content);
	int			changed = 0;
	int			last_kit = -1;
	int			first_rule = -1;
	int			lineno = 0;
	List	   *kept = NIL;
	ListCell   *lc;
	int			insert_at;

	/* Pass 1: keep every line but the kit's stale variants of ours. */
	for (line = copy; line != NULL; lineno++)
	{
		char	   *nl = strchr(line, '\n');
		HbaKitLine k;
		bool		drop = false;

		if (nl)
			*nl = '\0';
		if (nl == NULL && *line == '\0')
			break;

		if (parse_kit_line(line, &k) && strcmp(k.address, address) == 0)
		{
			for (int i = 0; i < 2; i++)
			{
				if (strcmp(k.database, databases[i]) != 0)
					continue;
				if (strcmp(k.role, roles[i]) != 0)
				{
					/* Before 1.3 the workers used the replication role. */
					if (i == 1 && strcmp(k.role, role) == 0)
						drop = true;
					continue;
				}
				if (strcmp(k.method, methods[i]) == 0 && !present[i])
					present[i] = true;
				else
					drop = true;	/* other method, or a duplicate */
			}
		}
		if (drop)
			changed++;
		else
		{
			const char *p = line;

			kept = lappend(kept, pstrdup(line));
			if (strstr(line, RK_HBA_MARK))
				last_kit = list_length(kept) - 1;
			while (*p == ' ' || *p == '\t')
				p++;
			if (first_rule < 0 && *p != '\0' && *p != '#')
				first_rule = list_length(kept) - 1;
		}
		line = nl ? nl + 1 : NULL;
	}

	if (present[0] && present[1] && changed == 0)
		return 0;

	/*
	 * New lines go after the kit's last line, or else before the first rule,
	 * so that they are not shadowed by a broader rule further up.
	 */
	insert_at = last_kit >= 0 ? last_kit + 1 : first_rule >= 0 ? first_rule : list_length(kept);
	initStringInfo(&out);
	for (int i = 0; i <= list_length(kept); i++)
	{
		if (i == insert_at)
		{
			for (int d = 0; d < 2; d++)
			{
				if (present[d])
					continue;
				appendStringInfo(&out, "%s\n",
								 format_kit_line(databases[d], roles[d], address, methods[d], owner_tag));
				changed++;
			}
		}
		if (i < list_length(kept))
		{
			lc = list_nth_cell(kept, i);
			appendStringInfo(&out, "%s\n", (char *) lfirst(lc));
		}
	}

	hba_commit(edit, content, len, out.data);
	return changed;
}

/*
 * Remove the kit's lines for (role, address); with owner_tag, only the lines
 * the kit added for that standby.  *foreign_match tells the caller that a
 * line of someone else's matches, which the kit leaves alone.  Returns the
 * number of lines removed.
 */
int
rk_hba_remove_lines(RkHbaEdit *edit, const char *role, const char *address,
					const char *owner_tag, bool *foreign_match)
{
	size_t		len;
	char	   *content = hba_begin(edit, &len);
	char	   *copy = pstrdup(content);
	StringInfoData out;
	int			removed = 0;
	char	   *line;
	bool		other_role_stays = false;

	/*
	 * The node role's line for an address goes with the last kit line that
	 * lets a replication role in from there: revoking one of two roles must
	 * not cut the nodes off.
	 */
	if (role != NULL)
	{
		char	   *scan = pstrdup(content);

		for (line = strtok(scan, "\n"); line != NULL; line = strtok(NULL, "\n"))
		{
			HbaKitLine k;

			if (parse_kit_line(line, &k) && strcmp(k.database, "replication") == 0 &&
				strcmp(k.role, role) != 0 && (address == NULL || strcmp(k.address, address) == 0) &&
				(owner_tag == NULL ? k.owner[0] == '\0' : strcmp(k.owner, owner_tag) == 0))
				other_role_stays = true;
		}
	}

	*foreign_match = false;
	initStringInfo(&out);
	for (line = copy; line != NULL;)
	{
		char	   *nl = strchr(line, '\n');
		HbaKitLine k;
		char	   *type,
				   *db,
				   *r,
				   *a;

		if (nl)
			*nl = '\0';
		if (nl == NULL && *line == '\0')
			break;

		if (parse_kit_line(line, &k))
		{
			bool		match = (role == NULL || strcmp(k.role, role) == 0 ||
								 (strcmp(k.role, RK_NODE_ROLE) == 0 && !other_role_stays)) &&
				(address == NULL || strcmp(k.address, address) == 0) &&
				(owner_tag == NULL ? k.owner[0] == '\0' : strcmp(k.owner, owner_tag) == 0);

			if (match)
			{
				removed++;
				line = nl ? nl + 1 : NULL;
				continue;
			}
		}
		else if (role != NULL && address != NULL &&
				 parse_any_rule(line, &type, &db, &r, &a) &&
				 strcmp(db, "replication") == 0 && strcmp(r, role) == 0 &&
				 strcmp(a, address) == 0)
			*foreign_match = true;

		appendStringInfo(&out, "%s\n", line);
		line = nl ? nl + 1 : NULL;
	}

	if (removed > 0)
		hba_commit(edit, content, len, out.data);
	return removed;
}

/* Put back the file an edit replaced; used when a later step fails. */
void
rk_hba_restore(RkHbaEdit *edit)
{
	if (edit->old_content == NULL)
		return;
	hba_write(edit->path, edit->old_content, edit->old_len);
	edit->old_content = NULL;
	rk_reload_config();
}

/*
 * Whether the first pg_hba.conf rule that would match a connection of
 * `role` from `host` to `database` (a database name, or "replication")
 * exists and lets it in.  Rules for host names are compared by name.
 */
bool
rk_hba_covers(const char *database, const char *role, const char *host)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	int			ret;
	bool		covered = false;
	unsigned char addr[16];
	bool		is_address = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;

	values[0] = CStringGetTextDatum(database);
	values[1] = CStringGetTextDatum(role);
	values[2] = CStringGetTextDatum(host);

	/* Only an address is compared with networks; a name, by name only. */
	SPI_connect();
	ret = SPI_execute_with_args(psprintf(
										 "SELECT auth_method <> 'reject' FROM pg_catalog.pg_hba_file_rules "
										 "WHERE error IS NULL AND type LIKE 'host%%' AND type NOT IN ('hostssl', 'hostgssenc') "
										 "  AND ($1 = ANY (database) OR ($1 <> 'replication' AND 'all' = ANY (database))) "
										 "  AND ($2 = ANY (user_name) OR 'all' = ANY (user_name)) "
										 "  AND (address = 'all' OR address = $3 %s) "
										 "ORDER BY line_number LIMIT 1",
										 is_address ?
										 "OR (netmask IS NOT NULL "
										 "    AND pg_catalog.family($3::inet) = pg_catalog.family(address::inet) "
										 "    AND ($3::inet & netmask::inet) = (address::inet & netmask::inet))" : ""),
								3, argtypes, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_hba_file_rules: %s", SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		bool		isnull;

		covered = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	return covered;
}
