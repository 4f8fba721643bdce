/*
 * json.h
 *		The little JSON the demo service needs: a parser for one flat object
 *		whose values are strings (or null), and a growable output buffer that
 *		knows how to write a JSON string literal.
 *
 * The request bodies of POST /user/register are flat objects of strings, so a
 * full JSON library would be dead weight; anything outside that shape is
 * refused with a short reason the service hands back as a 400.
 */
#ifndef RK_JSON_H
#define RK_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_FIELDS 32

typedef struct json_field
{
	char	   *key;			/* UTF-8, NUL-terminated */
	char	   *value;			/* UTF-8, NUL-terminated; NULL for JSON null */
} json_field;

typedef struct json_object
{
	int			nfields;
	json_field	fields[JSON_MAX_FIELDS];
} json_object;

/*
 * Parse buf[0..len) as one flat JSON object.  Returns true on success; on
 * failure returns false, leaves *obj empty and points *err at a short static
 * reason.  A successful result must be released with json_free.
 */
extern bool json_parse_flat(const char *buf, size_t len, json_object *obj,
							const char **err);
extern void json_free(json_object *obj);

/*
 * Look a key up.  Returns the field, or NULL if the key is absent (a key
 * present with value null returns a field whose value is NULL).
 */
extern const json_field *json_get(const json_object *obj, const char *key);

/* The value of one hex digit (0-9, a-f, A-F), or -1. */
extern int	json_hexval(unsigned char c);

/* A growable byte buffer; oom is sticky so callers check once at the end. */
typedef struct strbuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		oom;
} strbuf;

extern void sb_append(strbuf *sb, const char *s, size_t n);
extern void sb_puts(strbuf *sb, const char *s);
extern void sb_printf(strbuf *sb, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
/* Append s as a quoted JSON string literal, or null when s is NULL. */
extern void sb_json_string(strbuf *sb, const char *s);
extern void sb_free(strbuf *sb);

#endif							/* RK_JSON_H */
