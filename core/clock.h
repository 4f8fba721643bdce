/*-------------------------------------------------------------------------
 *
 * clock.h
 *		Durations measured on a monotonic clock.  The wall clock may be
 *		stepped (NTP, an operator, a restored VM); a deadline or a silence
 *		must not stretch or shrink with it.  CLOCK_BOOTTIME also counts the
 *		time a suspended machine slept, so a paused VM that wakes up sees
 *		its leases as expired, not as fresh.  Wall-clock timestamps are for
 *		logs and rk_events only.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RK_CLOCK_H
#define RK_CLOCK_H

#include <time.h>

/* Milliseconds on the monotonic clock; only differences mean anything. */
static inline int64
rk_monotonic_ms(void)
{
	struct timespec ts;

#ifdef CLOCK_BOOTTIME
	if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
		return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#endif
	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif							/* RK_CLOCK_H */
