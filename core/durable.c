/*-------------------------------------------------------------------------
 *
 * durable.c
 *		Writing and reading whole files, durably.  Every file the kit
 *		writes (its state file, its password file, postgresql.auto.conf
 *		when it is put back or written by the postmaster, pg_hba.conf,
 *		standby.signal) goes through rk_durable_write(), or through
 *		rk_durable_prepare() and rk_durable_install() when the new content
 *		must be checked in place before it replaces the old.
 *
 * The temporary file is named after the target and this process, created
 * with O_EXCL after removing any leftover of a crashed process that had
 * the same pid, and given its mode with fchmod, so that neither a stale
 * file nor the umask decides who can read a password.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"

#include "core/durable.h"

/* Fail the way the caller's context fails, after removing the temporary file. */
static void
fail(const char *tmp, const char *what)
{
	int			save = errno ? errno : EIO;

	(void) unlink(tmp);
	errno = save;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not %s file \"%s\": %m", what, tmp)));
}

/*
 * Write `content` into a new temporary file beside `path` and fsync it.
 * `mode` is the file's mode, or RK_MODE_OF_TARGET for the owner and mode of
 * the existing `path`.  Returns the temporary file's name.
 */
char *
rk_durable_prepare(const char *path, const char *content, size_t len, mode_t mode)
{
	char	   *tmp = psprintf("%s.rk%d.tmp", path, (int) getpid());
	struct stat target;
	int			fd;

	if (mode == RK_MODE_OF_TARGET)
	{
		if (stat(path, &target) < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", path)));
		mode = target.st_mode & 07777;
	}
	else
		target.st_uid = geteuid(), target.st_gid = getegid();

	(void) unlink(tmp);
	fd = OpenTransientFilePerm(tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, mode);
	if (fd < 0)
		fail(tmp, "create");
	if (fchmod(fd, mode) < 0 ||
		((target.st_uid != geteuid() || target.st_gid != getegid()) &&
		 fchown(fd, target.st_uid, target.st_gid) < 0))
	{
		int			save = errno;

		CloseTransientFile(fd);
		errno = save;
		fail(tmp, "set the owner and mode of");
	}
	errno = 0;
	if (write(fd, content, len) != (ssize_t) len || pg_fsync(fd) != 0)
	{
		int			save = errno ? errno : ENOSPC;

		CloseTransientFile(fd);
		errno = save;
		fail(tmp, "write");
	}
	if (CloseTransientFile(fd) != 0)
		fail(tmp, "close");
	return tmp;
}

/* Put a prepared file in place: rename, fsync of the file and the directory. */
void
rk_durable_install(const char *tmp, const char *path)
{
	if (durable_rename(tmp, path, LOG) != 0)
	{
		int			save = errno;

		(void) unlink(tmp);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename \"%s\" to \"%s\": %m", tmp, path)));
	}
}

/* Replace `path` with `content`, durably. */
void
rk_durable_write(const char *path, const char *content, size_t len, mode_t mode)
{
	rk_durable_install(rk_durable_prepare(path, content, len, mode), path);
}

/* Remove `path` (if it exists) and make the removal durable. */
void
rk_durable_remove(const char *path)
{
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return;
	if (durable_unlink(path, LOG) != 0 && errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", path)));
}

/* A whole file into memory; NULL with errno set if it cannot be read. */
char *
rk_read_whole_file(const char *path, size_t *len)
{
	FILE	   *f;
	struct stat st;
	char	   *buf;
	size_t		n;

	f = AllocateFile(path, PG_BINARY_R);
	if (f == NULL)
		return NULL;
	if (fstat(fileno(f), &st) < 0)
	{
		int			save = errno;

		FreeFile(f);
		errno = save;
		return NULL;
	}
	buf = palloc(st.st_size + 1);
	n = fread(buf, 1, st.st_size, f);
	if (ferror(f) || n != (size_t) st.st_size)
	{
		int			save = errno ? errno : EIO;

		FreeFile(f);
		pfree(buf);
		errno = save;
		return NULL;
	}
	FreeFile(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}
