/*
 * log.h
 *		One-line logging to stderr for the demo service.
 *
 * Every message is written with a single stdio call so that lines from
 * concurrent request threads never interleave; embedded newlines (libpq error
 * messages carry them) are flattened to spaces.
 */
#ifndef RK_LOG_H
#define RK_LOG_H

extern void rk_log(const char *level, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

#endif							/* RK_LOG_H */
