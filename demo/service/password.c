/*
 * password.c
 *		Salted SHA-256 password hashing (see password.h).
 *
 * The walkthrough's service only needs the password never to be stored in
 * plain text; a deliberately slow KDF (scrypt, argon2) would be the choice for
 * a real service but would make the write benchmark measure hashing instead of
 * the database.  The stored form keeps the salt beside the digest so that a
 * later login check can recompute it.
 */
#include "password.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SALT_LEN 16

static void
to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0F];
	}
	out[2 * n] = '\0';
}

char *
password_hash(const char *password)
{
	unsigned char salt[SALT_LEN];
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	size_t		got = 0;
	EVP_MD_CTX *ctx;
	char	   *out;
	int			ok;

	while (got < sizeof(salt))
	{
		ssize_t		r = getrandom(salt + got, sizeof(salt) - got, 0);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return NULL;
		}
		got += (size_t) r;
	}

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return NULL;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
		EVP_DigestUpdate(ctx, salt, sizeof(salt)) &&
		EVP_DigestUpdate(ctx, password, strlen(password)) &&
		EVP_DigestFinal_ex(ctx, digest, &dlen);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return NULL;

	out = malloc(2 * SALT_LEN + 1 + 2 * dlen + 1);
	if (out == NULL)
		return NULL;
	to_hex(salt, sizeof(salt), out);
	out[2 * SALT_LEN] = '$';
	to_hex(digest, dlen, out + 2 * SALT_LEN + 1);
	return out;
}
