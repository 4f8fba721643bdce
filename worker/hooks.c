/*-------------------------------------------------------------------------
 *
 * hooks.c
 *		What the worker starts outside the server: the operator's
 *		replication_kit.event_command when this node's role changes, and the
 *		fork both it and the rejoin helper (rejoin.c) are started with.
 *
 * The event command runs in a session of its own, with the event, this
 * node's name, its role, the term and the primary's name as arguments
 * (never spliced into the command text), one at a time, never longer than
 * replication_kit.event_timeout.  The worker does not wait for it: each
 * round looks at it without blocking, so a slow command (a VIP move, a
 * pooler reload) never delays a probe, a vote or a lease.  Its exit status
 * and the start of its output go to the log and rk_events (journal.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "core/clock.h"
#include "core/settings.h"
#include "worker/fsm.h"

#define RK_CHILD_MAX_FD		65536	/* a child closes what it inherited below this */
#define RK_HOOK_QUEUE		8	/* events waiting while one command runs */
#define RK_HOOK_OUTPUT		400 /* bytes of its output kept for rk_events */
/*
 * Its output goes to a file in PGDATA, not a pipe: a command that outlives
 * this worker (the server shutting down for a rejoin) must not die of
 * SIGPIPE halfway through moving an address.
 */
#define RK_HOOK_OUTPUT_FILE	"replication_kit.event_command.out"

typedef struct RkHookEvent
{
	char		event[16];
	char		role[16];
	char		primary[NAMEDATALEN];
	uint64		term;
} RkHookEvent;

/* Only this process's memory: a restarted worker forgets a running command. */
static RkHookEvent queue[RK_HOOK_QUEUE];
static int	queued = 0;
static RkHookEvent running;
static pid_t running_pid = 0;
static int64 running_since;

/*
 * Fork a child in a session of its own: a shutdown of the server signals
 * the worker's process group, and must spare it.  Returns the child's pid
 * in the parent (-1 and errno if there is none) and 0 in the child, whose
 * stdin is /dev/null, stdout and stderr `out_fd` (/dev/null if -1), other
 * descriptors closed, every signal at its default and unblocked, and
 * PGPASSWORD (which its libpq would prefer over the password file) unset.
 */
pid_t
rk_fork_detached(int out_fd)
{
	sigset_t	all;
	sigset_t	old;
	pid_t		pid;
	int			devnull;

	/*
	 * Until the child has its own session it is in this worker's process
	 * group: fork with every signal blocked; the child discards what reached
	 * it in that window (ignoring a pending signal drops it) before it lets
	 * signals in again.
	 */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	fflush(NULL);
	pid = fork();
	if (pid != 0)
	{
		int			save_errno = errno;

		sigprocmask(SIG_SETMASK, &old, NULL);
		errno = save_errno;
		return pid;
	}

	(void) setsid();
	for (int sig = 1; sig < NSIG; sig++)
	{
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		signal(sig, SIG_IGN);
		signal(sig, SIG_DFL);
	}
	devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0)
		(void) dup2(devnull, 0);
	if (out_fd < 0)
		out_fd = devnull;
	if (out_fd >= 0)
	{
		(void) dup2(out_fd, 1);
		(void) dup2(out_fd, 2);
	}
	for (int fd = 3; fd < Min(RK_CHILD_MAX_FD, sysconf(_SC_OPEN_MAX)); fd++)
		(void) close(fd);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	unsetenv("PGPASSWORD");
	return 0;
}

/* Start the next queued command; false (and journaled) if it cannot start. */
static bool
start_next(RkView *v)
{
	int			out;
	char		term_s[32];
	char	   *script;

	running = queue[0];
	queued--;
	memmove(&queue[0], &queue[1], sizeof(RkHookEvent) * queued);

	out = open(RK_HOOK_OUTPUT_FILE, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, pg_file_create_mode);
	if (out < 0)
	{
		rk_journal(v, "hook_failed", v->self, "%s in term " UINT64_FORMAT ": could not open %s: %m",
				   running.event, running.term, RK_HOOK_OUTPUT_FILE);
		return false;
	}
	snprintf(term_s, sizeof(term_s), UINT64_FORMAT, running.term);
	/* The arguments follow the command as "$@": values, not shell text. */
	script = psprintf("%s \"$@\"", rk_event_command);
	running_pid = rk_fork_detached(out);
	if (running_pid == 0)
	{
		execl("/bin/sh", "sh", "-c", script, "replication_kit", running.event, v->self,
			  running.role, term_s, running.primary, (char *) NULL);
		_exit(127);
	}
	close(out);
	pfree(script);
	if (running_pid < 0)
	{
		running_pid = 0;
		rk_journal(v, "hook_failed", v->self, "%s in term " UINT64_FORMAT ": could not fork: %m",
				   running.event, running.term);
		return false;
	}
	running_since = rk_monotonic_ms();
	return true;
}

/*
 * The start of what the command printed, one line of printable ASCII: it
 * goes into the log, rk_events and a NOTIFY payload.
 */
static char *
read_output(void)
{
	char	   *buf = palloc0(RK_HOOK_OUTPUT + 1);
	int			fd = open(RK_HOOK_OUTPUT_FILE, O_RDONLY | PG_BINARY, 0);
	ssize_t		n = fd >= 0 ? read(fd, buf, RK_HOOK_OUTPUT) : 0;

	if (fd >= 0)
		close(fd);
	buf[Max(n, 0)] = '\0';
	for (char *c = buf; *c; c++)
		if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
			*c = (*c == '\n' || *c == '\t' || *c == '\r') ? ' ' : '?';
	return buf;
}

/* The running command ended (or was killed): journal how, and forget it. */
static void
finish(RkView *v, pid_t r, int status, bool timed_out)
{
	int			wait_errno = errno;
	char	   *output = read_output();
	long		ran_ms = (long) (rk_monotonic_ms() - running_since);

	errno = wait_errno;

	if (timed_out)
		rk_journal(v, "hook", v->self, "%s in term " UINT64_FORMAT ": event_command killed after event_timeout (%d ms); output: %s",
				   running.event, running.term, rk_event_timeout_ms, output);
	else if (r < 0)
		rk_journal(v, "hook", v->self, "%s in term " UINT64_FORMAT ": event_command ended after %ld ms, status unknown (waitpid: %m); output: %s",
				   running.event, running.term, ran_ms, output);
	else if (WIFEXITED(status))
		rk_journal(v, "hook", v->self, "%s in term " UINT64_FORMAT ": event_command exited with status %d after %ld ms; output: %s",
				   running.event, running.term, WEXITSTATUS(status), ran_ms, output);
	else
		rk_journal(v, "hook", v->self, "%s in term " UINT64_FORMAT ": event_command ended by signal %d after %ld ms; output: %s",
				   running.event, running.term, WIFSIGNALED(status) ? WTERMSIG(status) : 0, ran_ms, output);
	running_pid = 0;
}

/*
 * Once a round: has the running command ended, or run out of time?  Then
 * start the next one.
 */
void
rk_hooks_poll(RkView *v)
{
	for (;;)
	{
		if (running_pid > 0)
		{
			int			status = 0;
			pid_t		r;
			bool		timed_out = false;

			r = waitpid(running_pid, &status, WNOHANG);
			if (r == 0 && rk_monotonic_ms() - running_since < rk_event_timeout_ms)
				return;
			if (r == 0)
			{
				/* Its whole session: the shell and whatever it started. */
				(void) kill(-running_pid, SIGKILL);
				(void) waitpid(running_pid, &status, 0);
				timed_out = true;
			}
			finish(v, r, status, timed_out);
		}
		if (queued == 0)
			return;
		(void) start_next(v);
	}
}

/*
 * A standby that has contact with a primary other than the one it
 * followed last (or in a newer term): "following".  Whoever re-pointed
 * it, this worker, a vote it granted, or a rejoin before a restart.
 */
void
rk_hooks_note_primary(RkView *v)
{
	static char followed[NAMEDATALEN];
	static uint64 followed_term;
	const char *name;

	if (!v->in_recovery || !v->contact || v->primary_idx < 0 || v->peers[v->primary_idx].is_self)
		return;
	name = v->peers[v->primary_idx].name;
	if (strcmp(name, followed) == 0 && v->st.term == followed_term)
		return;
	strlcpy(followed, name, sizeof(followed));
	followed_term = v->st.term;
	rk_hook_event(v, "following", "standby", name);
}

/*
 * This node's role changed: queue the event for the operator's command
 * (if there is one) and start it at once if none runs.
 */
void
rk_hook_event(RkView *v, const char *event, const char *role, const char *primary)
{
	RkHookEvent *e;

	if (rk_event_command == NULL || rk_event_command[0] == '\0')
		return;
	if (queued == RK_HOOK_QUEUE)
	{
		rk_journal(v, "hook_failed", v->self, "%s: %d events wait for event_command already; the oldest (%s in term " UINT64_FORMAT ") is dropped",
				   event, RK_HOOK_QUEUE, queue[0].event, queue[0].term);
		memmove(&queue[0], &queue[1], sizeof(RkHookEvent) * (RK_HOOK_QUEUE - 1));
		queued--;
	}
	e = &queue[queued++];
	strlcpy(e->event, event, sizeof(e->event));
	strlcpy(e->role, role, sizeof(e->role));
	strlcpy(e->primary, primary ? primary : "", sizeof(e->primary));
	e->term = v->st.term;
	rk_hooks_poll(v);
}
