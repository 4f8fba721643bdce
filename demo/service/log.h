/*
 * log.h
 *		One-line logging to stderr for the demo service.
 *
 * Every message is written with a single stdio call so that lines from
 * concurrent request threads never interleave; every control byte and the
 * backslash are escaped (\\xNN, \\\\), so a message is always one line.
 */
#ifndef RK_LOG_H
#define RK_LOG_H

extern void rk_log(const char *level, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

#endif							/* RK_LOG_H */
