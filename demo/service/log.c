/*
 * log.c
 *		One-line, timestamped logging to stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void
rk_log(const char *level, const char *fmt,...)
{
	char		msg[900];
	char		esc[sizeof(msg) * 4];
	char		line[sizeof(esc) + 128];
	char		stamp[32];
	struct timespec ts;
	struct tm	tm;
	va_list		ap;
	size_t		n = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A trailing newline (libmicrohttpd ends its messages with one) is no content. */
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	n = 0;

	/*
	 * One line per message, whatever it quotes: every byte outside
	 * printable ASCII (libpq messages carry newlines; a client's method or
	 * header can carry anything, C1 controls such as CSI and their UTF-8
	 * forms included) and the backslash are written as escapes, so no input
	 * can forge a line or a terminal sequence in the log.
	 */
	for (const unsigned char *p = (const unsigned char *) msg; *p; p++)
	{
		if (*p == '\\')
		{
			esc[n++] = '\\';
			esc[n++] = '\\';
		}
		else if (*p < 0x20 || *p >= 0x7f)
			n += (size_t) snprintf(esc + n, sizeof(esc) - n, "\\x%02x", *p);
		else
			esc[n++] = (char) *p;
	}
	esc[n] = '\0';

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(line, sizeof(line), "%s.%03ldZ rk_social %s: %s\n",
			 stamp, ts.tv_nsec / 1000000L, level, esc);
	fputs(line, stderr);
}
