/*
 * password.c
 *		Password hashing for the demo service (see password.h): yescrypt, the
 *		default of Debian's own /etc/shadow, through libxcrypt.
 *
 * A password is stored only as the hash crypt_r() makes from it with a
 * setting that crypt_gensalt_rn() draws from the kernel's random source;
 * the setting (algorithm, cost, salt) is kept at the front of the hash, so
 * a later check recomputes it from the stored string alone.  yescrypt is
 * deliberately slow and memory-hard (about 20 ms and a few MB per hash at
 * the default cost here), which is the point: a stolen table must not be
 * cheap to guess through.
 */
#include "password.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#define HASH_PREFIX "$y$"		/* yescrypt */

char *
password_hash(const char *password)
{
	char		setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *hash;
	char	   *out = NULL;

	/* count 0: libxcrypt's default cost; no rbytes: it reads the kernel's. */
	if (crypt_gensalt_rn(HASH_PREFIX, 0, NULL, 0, setting, sizeof(setting)) == NULL)
		return NULL;
	cd = calloc(1, sizeof(struct crypt_data));	/* large: not on a thread's stack */
	if (cd == NULL)
		return NULL;
	hash = crypt_r(password, setting, cd);
	/* A failure is NULL or a string starting with '*', never a hash. */
	if (hash != NULL && hash[0] != '*')
		out = strdup(hash);
	explicit_bzero(cd, sizeof(struct crypt_data));
	free(cd);
	return out;
}

bool
password_verify(const char *password, const char *stored)
{
	struct crypt_data *cd;
	const char *hash;
	bool		ok = false;

	if (stored == NULL || strncmp(stored, HASH_PREFIX, strlen(HASH_PREFIX)) != 0)
		return false;
	cd = calloc(1, sizeof(struct crypt_data));
	if (cd == NULL)
		return false;
	hash = crypt_r(password, stored, cd);
	if (hash != NULL && hash[0] != '*' && strlen(hash) == strlen(stored))
	{
		/* Constant time: every byte is compared, whatever the first mismatch. */
		unsigned char diff = 0;

		for (size_t i = 0; i < strlen(stored); i++)
			diff |= (unsigned char) hash[i] ^ (unsigned char) stored[i];
		ok = diff == 0;
	}
	explicit_bzero(cd, sizeof(struct crypt_data));
	free(cd);
	return ok;
}
