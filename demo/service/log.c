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
	char		line[1024];
	char		msg[900];
	char		stamp[32];
	struct timespec ts;
	struct tm	tm;
	va_list		ap;
	size_t		n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* flatten multi-line messages and drop trailing whitespace */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == ' ')
		msg[--n] = '\0';

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(line, sizeof(line), "%s.%03ldZ rk_social %s: %s\n",
			 stamp, ts.tv_nsec / 1000000L, level, msg);
	fputs(line, stderr);
}
