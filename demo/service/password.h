/*
 * password.h
 *		Salted password hashing for the demo service.
 */
#ifndef RK_PASSWORD_H
#define RK_PASSWORD_H

/*
 * Hash a password for storage: 16 random bytes of salt from the kernel
 * (getrandom, the /dev/urandom pool) and SHA-256 over salt || password,
 * returned as a malloc'ed "hexsalt$hexdigest" string, or NULL on failure.
 */
extern char *password_hash(const char *password);

#endif							/* RK_PASSWORD_H */
