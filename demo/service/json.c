/*
 * json.c
 *		A strict parser for one flat JSON object of string (or null) values,
 *		and a small output buffer that writes JSON string literals.
 *
 * The parser follows RFC 8259 for what it accepts: all the standard escapes,
 * \uXXXX including surrogate pairs, and raw UTF-8 which is validated (no
 * overlong forms, no surrogates, nothing above U+10FFFF).  It refuses what
 * PostgreSQL could not store in a text column (\u0000) and everything that is
 * not a flat object of strings: numbers, booleans, arrays, nested objects,
 * duplicate keys, trailing garbage.
 */
#include "json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser
{
	const unsigned char *p;
	const unsigned char *end;
	const char *err;
} parser;

static void
skip_ws(parser *ps)
{
	while (ps->p < ps->end &&
		   (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* The value of one hex digit, or -1; also the service's URL unescaper uses it. */
int
json_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Read the four hex digits of a \u escape (ps->p is just past the 'u'). */
static bool
read_hex4(parser *ps, uint32_t *out)
{
	uint32_t	v = 0;

	if (ps->end - ps->p < 4)
		return false;
	for (int i = 0; i < 4; i++)
	{
		int			h = json_hexval(ps->p[i]);

		if (h < 0)
			return false;
		v = (v << 4) | (uint32_t) h;
	}
	ps->p += 4;
	*out = v;
	return true;
}

static void
put_utf8(strbuf *sb, uint32_t cp)
{
	char		b[4];
	size_t		n;

	if (cp < 0x80)
	{
		b[0] = (char) cp;
		n = 1;
	}
	else if (cp < 0x800)
	{
		b[0] = (char) (0xC0 | (cp >> 6));
		b[1] = (char) (0x80 | (cp & 0x3F));
		n = 2;
	}
	else if (cp < 0x10000)
	{
		b[0] = (char) (0xE0 | (cp >> 12));
		b[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char) (0x80 | (cp & 0x3F));
		n = 3;
	}
	else
	{
		b[0] = (char) (0xF0 | (cp >> 18));
		b[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char) (0x80 | (cp & 0x3F));
		n = 4;
	}
	sb_append(sb, b, n);
}

/*
 * Length of the valid UTF-8 sequence starting at p (a byte >= 0x80), or 0 if
 * it is not one.
 */
static size_t
utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t		n;
	uint32_t	cp;

	if (c >= 0xC2 && c <= 0xDF)
	{
		n = 2;
		cp = c & 0x1F;
	}
	else if (c >= 0xE0 && c <= 0xEF)
	{
		n = 3;
		cp = c & 0x0F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		n = 4;
		cp = c & 0x07;
	}
	else
		return 0;
	if ((size_t) (end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++)
	{
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		(cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return n;
}

/* Parse a string literal (ps->p at the opening quote) into a fresh C string. */
static char *
parse_string(parser *ps)
{
	strbuf		sb = {0};

	if (ps->p >= ps->end || *ps->p != '"')
	{
		ps->err = "bad JSON: expected a string";
		return NULL;
	}
	ps->p++;
	for (;;)
	{
		unsigned char c;

		if (ps->p >= ps->end)
		{
			ps->err = "bad JSON: unterminated string";
			goto fail;
		}
		c = *ps->p;
		if (c == '"')
		{
			ps->p++;
			break;
		}
		if (c < 0x20)
		{
			ps->err = "bad JSON: control character in string";
			goto fail;
		}
		if (c == '\\')
		{
			uint32_t	cp;

			if (ps->end - ps->p < 2)
			{
				ps->err = "bad JSON: unterminated string";
				goto fail;
			}
			c = ps->p[1];
			ps->p += 2;
			switch (c)
			{
				case '"':
					sb_append(&sb, "\"", 1);
					break;
				case '\\':
					sb_append(&sb, "\\", 1);
					break;
				case '/':
					sb_append(&sb, "/", 1);
					break;
				case 'b':
					sb_append(&sb, "\b", 1);
					break;
				case 'f':
					sb_append(&sb, "\f", 1);
					break;
				case 'n':
					sb_append(&sb, "\n", 1);
					break;
				case 'r':
					sb_append(&sb, "\r", 1);
					break;
				case 't':
					sb_append(&sb, "\t", 1);
					break;
				case 'u':
					if (!read_hex4(ps, &cp))
					{
						ps->err = "bad JSON: bad \\u escape";
						goto fail;
					}
					if (cp >= 0xDC00 && cp <= 0xDFFF)
					{
						ps->err = "bad JSON: lone surrogate in \\u escape";
						goto fail;
					}
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						uint32_t	lo;

						if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
						{
							ps->err = "bad JSON: lone surrogate in \\u escape";
							goto fail;
						}
						ps->p += 2;
						if (!read_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF)
						{
							ps->err = "bad JSON: lone surrogate in \\u escape";
							goto fail;
						}
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					}
					if (cp == 0)
					{
						ps->err = "bad JSON: \\u0000 is not allowed";
						goto fail;
					}
					put_utf8(&sb, cp);
					break;
				default:
					ps->err = "bad JSON: unknown escape";
					goto fail;
			}
			continue;
		}
		if (c < 0x80)
		{
			sb_append(&sb, (const char *) ps->p, 1);
			ps->p++;
		}
		else
		{
			size_t		n = utf8_seq_len(ps->p, ps->end);

			if (n == 0)
			{
				ps->err = "bad JSON: invalid UTF-8";
				goto fail;
			}
			sb_append(&sb, (const char *) ps->p, n);
			ps->p += n;
		}
	}
	sb_append(&sb, "", 1);		/* terminating NUL */
	if (sb.oom)
	{
		ps->err = "out of memory";
		goto fail;
	}
	return sb.data;

fail:
	sb_free(&sb);
	return NULL;
}

bool
json_parse_flat(const char *buf, size_t len, json_object *obj, const char **err)
{
	parser		ps = {(const unsigned char *) buf, (const unsigned char *) buf + len, NULL};

	memset(obj, 0, sizeof(*obj));

	/* An optional UTF-8 byte order mark is tolerated, as most parsers do. */
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		ps.p += 3;

	skip_ws(&ps);
	if (ps.p >= ps.end || *ps.p != '{')
	{
		ps.err = "bad JSON: expected an object";
		goto fail;
	}
	ps.p++;
	skip_ws(&ps);
	if (ps.p < ps.end && *ps.p == '}')
		ps.p++;
	else
	{
		for (;;)
		{
			char	   *key;
			char	   *value = NULL;

			skip_ws(&ps);
			key = parse_string(&ps);
			if (key == NULL)
				goto fail;
			if (json_get(obj, key) != NULL)
			{
				free(key);
				ps.err = "bad JSON: duplicate key";
				goto fail;
			}
			if (obj->nfields >= JSON_MAX_FIELDS)
			{
				free(key);
				ps.err = "bad JSON: too many fields";
				goto fail;
			}
			skip_ws(&ps);
			if (ps.p >= ps.end || *ps.p != ':')
			{
				free(key);
				ps.err = "bad JSON: expected ':'";
				goto fail;
			}
			ps.p++;
			skip_ws(&ps);
			if (ps.p < ps.end && *ps.p == '"')
			{
				value = parse_string(&ps);
				if (value == NULL)
				{
					free(key);
					goto fail;
				}
			}
			else if (ps.end - ps.p >= 4 && memcmp(ps.p, "null", 4) == 0)
				ps.p += 4;
			else
			{
				free(key);
				ps.err = "bad JSON: values must be strings";
				goto fail;
			}
			obj->fields[obj->nfields].key = key;
			obj->fields[obj->nfields].value = value;
			obj->nfields++;

			skip_ws(&ps);
			if (ps.p < ps.end && *ps.p == ',')
			{
				ps.p++;
				continue;
			}
			if (ps.p < ps.end && *ps.p == '}')
			{
				ps.p++;
				break;
			}
			ps.err = "bad JSON: expected ',' or '}'";
			goto fail;
		}
	}
	skip_ws(&ps);
	if (ps.p != ps.end)
	{
		ps.err = "bad JSON: trailing data after the object";
		goto fail;
	}
	return true;

fail:
	json_free(obj);
	*err = ps.err ? ps.err : "bad JSON";
	return false;
}

void
json_free(json_object *obj)
{
	for (int i = 0; i < obj->nfields; i++)
	{
		free(obj->fields[i].key);
		free(obj->fields[i].value);
	}
	obj->nfields = 0;
}

const json_field *
json_get(const json_object *obj, const char *key)
{
	for (int i = 0; i < obj->nfields; i++)
		if (strcmp(obj->fields[i].key, key) == 0)
			return &obj->fields[i];
	return NULL;
}

void
sb_append(strbuf *sb, const char *s, size_t n)
{
	if (sb->oom)
		return;
	if (sb->len + n + 1 > sb->cap)
	{
		size_t		ncap = sb->cap ? sb->cap : 256;
		char	   *nd;

		while (ncap < sb->len + n + 1)
			ncap *= 2;
		nd = realloc(sb->data, ncap);
		if (nd == NULL)
		{
			sb->oom = true;
			return;
		}
		sb->data = nd;
		sb->cap = ncap;
	}
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void
sb_puts(strbuf *sb, const char *s)
{
	sb_append(sb, s, strlen(s));
}

void
sb_printf(strbuf *sb, const char *fmt,...)
{
	char		small[256];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
	{
		sb->oom = true;
		return;
	}
	if ((size_t) n < sizeof(small))
	{
		sb_append(sb, small, (size_t) n);
		return;
	}
	{
		char	   *big = malloc((size_t) n + 1);

		if (big == NULL)
		{
			sb->oom = true;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(big, (size_t) n + 1, fmt, ap);
		va_end(ap);
		sb_append(sb, big, (size_t) n);
		free(big);
	}
}

void
sb_json_string(strbuf *sb, const char *s)
{
	const char *run;

	if (s == NULL)
	{
		sb_puts(sb, "null");
		return;
	}
	sb_append(sb, "\"", 1);
	run = s;
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;
		const char *esc = NULL;
		char		ubuf[8];

		switch (c)
		{
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			default:
				if (c < 0x20 || c == 0x7F)
				{
					snprintf(ubuf, sizeof(ubuf), "\\u%04x", c);
					esc = ubuf;
				}
				break;
		}
		if (esc)
		{
			sb_append(sb, run, (size_t) (s - run));
			sb_puts(sb, esc);
			run = s + 1;
		}
	}
	sb_append(sb, run, (size_t) (s - run));
	sb_append(sb, "\"", 1);
}

void
sb_free(strbuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = 0;
	sb->oom = false;
}
