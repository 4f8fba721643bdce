/*
 * password_test.c
 *		A check of password.c on its own: a yescrypt string comes out, each
 *		hash has its own salt, the right password verifies and no other does.
 *		Run by test_service.sh; exits non-zero with a message on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "password.h"

static int
check(int ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAILED", what);
	return ok ? 0 : 1;
}

int
main(void)
{
	char	   *a = password_hash("s3cret");
	char	   *b = password_hash("s3cret");
	int			failed = 0;

	if (a == NULL || b == NULL)
	{
		puts("FAILED: password_hash returned NULL");
		return 1;
	}
	failed += check(strncmp(a, "$y$", 3) == 0, "the stored form is a yescrypt string");
	failed += check(strstr(a, "s3cret") == NULL, "it does not contain the password");
	failed += check(strcmp(a, b) != 0, "two hashes of one password differ (own salt each)");
	failed += check(password_verify("s3cret", a), "the right password verifies");
	failed += check(!password_verify("s3cret ", a), "a longer one does not");
	failed += check(!password_verify("s3cre", a), "a shorter one does not");
	failed += check(!password_verify("", a), "an empty one does not");
	failed += check(!password_verify("s3cret", "e3b0c44298fc1c149afbf4c8996fb924$abcd"),
					"an old SHA-256 form is not taken for a match");
	failed += check(!password_verify("s3cret", a + 1), "a mangled hash does not verify");
	free(a);
	free(b);
	return failed ? 1 : 0;
}
