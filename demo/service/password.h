/*
 * password.h
 *		Password hashing for the demo service.
 */
#ifndef RK_PASSWORD_H
#define RK_PASSWORD_H

#include <stdbool.h>

/*
 * Hash a password for storage with yescrypt: a malloc'ed crypt(3) string
 * ("$y$<cost>$<salt>$<hash>"), or NULL on failure.
 */
extern char *password_hash(const char *password);

/* Does `password` match a string password_hash() made?  Constant-time compare. */
extern bool password_verify(const char *password, const char *stored);

#endif							/* RK_PASSWORD_H */
