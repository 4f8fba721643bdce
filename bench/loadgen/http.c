/*
 * http.c
 *		The load generator's HTTP/1.1 client (see http.h).
 *
 * Blocking sockets with SO_SNDTIMEO/SO_RCVTIMEO keep the code short: each
 * load thread owns one connection and waits for each answer in turn, which is
 * exactly the closed-loop client the benchmark describes.
 */
#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_HEADER_BYTES (64 * 1024)
#define MAX_BODY_BYTES (4 * 1024 * 1024)

bool
http_parse_url(const char *url, http_target *t, char *err, size_t errlen)
{
	const char *p;
	const char *host_start;
	const char *host_end;
	const char *port_start = NULL;
	const char *path;
	char		host[256];
	char		port[16] = "80";
	struct addrinfo hints;
	struct addrinfo *res;
	int			rc;
	size_t		n;

	memset(t, 0, sizeof(*t));
	if (strncmp(url, "http://", 7) != 0)
	{
		snprintf(err, errlen, "URL must start with http://");
		return false;
	}
	p = url + 7;
	path = p + strcspn(p, "/");
	if (*p == '[')
	{
		/* [IPv6]:port */
		host_start = p + 1;
		host_end = memchr(p, ']', (size_t) (path - p));
		if (host_end == NULL)
		{
			snprintf(err, errlen, "missing ']' in URL");
			return false;
		}
		if (host_end[1] == ':')
			port_start = host_end + 2;
		else if (host_end + 1 != path)
		{
			snprintf(err, errlen, "bad host in URL");
			return false;
		}
	}
	else
	{
		host_start = p;
		host_end = memchr(p, ':', (size_t) (path - p));
		if (host_end)
			port_start = host_end + 1;
		else
			host_end = path;
	}
	n = (size_t) (host_end - host_start);
	if (n == 0 || n >= sizeof(host))
	{
		snprintf(err, errlen, "bad host in URL");
		return false;
	}
	memcpy(host, host_start, n);
	host[n] = '\0';
	if (port_start)
	{
		size_t		pn = (size_t) (path - port_start);

		if (pn == 0 || pn >= sizeof(port) || strspn(port_start, "0123456789") < pn)
		{
			snprintf(err, errlen, "bad port in URL");
			return false;
		}
		memcpy(port, port_start, pn);
		port[pn] = '\0';
	}
	n = (size_t) (path - p);
	if (n >= sizeof(t->host_header))
	{
		snprintf(err, errlen, "URL too long");
		return false;
	}
	memcpy(t->host_header, p, n);
	t->host_header[n] = '\0';
	n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		n--;
	if (n >= sizeof(t->base_path))
	{
		snprintf(err, errlen, "URL path too long");
		return false;
	}
	memcpy(t->base_path, path, n);
	t->base_path[n] = '\0';
	snprintf(t->display, sizeof(t->display), "%s", url);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
	{
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
		return false;
	}
	memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
	t->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

void
http_conn_init(http_conn *c, const http_target *t, int timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->target = t;
	c->fd = -1;
	c->timeout_ms = timeout_ms;
}

void
http_conn_close(http_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = c->consumed = 0;
	c->nreq = 0;
}

void
http_conn_free(http_conn *c)
{
	http_conn_close(c);
	free(c->buf);
	free(c->req);
	c->buf = c->req = NULL;
	c->cap = c->reqcap = 0;
}

static int
open_socket(http_conn *c, char *err, size_t errlen)
{
	struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
	int			one = 1;
	int			fd = socket(c->target->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
	{
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* on Linux SO_SNDTIMEO also bounds a blocking connect() */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *) &c->target->addr, c->target->addrlen) < 0)
	{
		snprintf(err, errlen, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->len = c->consumed = 0;
	c->nreq = 0;
	return 0;
}

static int
send_all(http_conn *c, const char *p, size_t n, char *err, size_t errlen)
{
	while (n > 0)
	{
		ssize_t		w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				c->peer_closed = true;
			snprintf(err, errlen, "send: %s",
					 (errno == EAGAIN || errno == EWOULDBLOCK) ? "timeout" : strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t) w;
	}
	return 0;
}

/* Receive more bytes into c->buf; 1 = got some, 0 = EOF, -1 = error. */
static int
recv_more(http_conn *c, char *err, size_t errlen)
{
	ssize_t		r;

	if (c->len == c->cap)
	{
		size_t		ncap = c->cap ? c->cap * 2 : 8192;
		char	   *nb;

		if (ncap > MAX_HEADER_BYTES + MAX_BODY_BYTES)
		{
			snprintf(err, errlen, "response too large");
			return -1;
		}
		nb = realloc(c->buf, ncap);
		if (nb == NULL)
		{
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		c->buf = nb;
		c->cap = ncap;
	}
	for (;;)
	{
		r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		break;
	}
	if (r < 0)
	{
		if (errno == ECONNRESET)
			c->peer_closed = true;
		snprintf(err, errlen, "recv: %s",
				 (errno == EAGAIN || errno == EWOULDBLOCK) ? "timeout" : strerror(errno));
		return -1;
	}
	if (r == 0)
	{
		c->peer_closed = true;
		snprintf(err, errlen, "connection closed by server");
		return 0;
	}
	c->len += (size_t) r;
	return 1;
}

/* Find the end of the header block in buf[0..len); returns offset past it or 0. */
static size_t
header_end(const char *buf, size_t len)
{
	for (size_t i = 3; i < len; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return i + 1;
	return 0;
}

/*
 * Read one response.  *got_any tells the caller whether the server sent
 * anything at all, which decides whether a resend is safe.
 */
static int
read_response(http_conn *c, http_response *resp, bool *got_any, char *err, size_t errlen)
{
	size_t		hend;
	long long	clen = -1;
	bool		close_after = false;
	bool		chunked = false;
	const char *line;
	int			rc;

	*got_any = false;
	/* drop the previous response's bytes */
	if (c->consumed > 0)
	{
		memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
		c->len -= c->consumed;
		c->consumed = 0;
	}
	while ((hend = header_end(c->buf, c->len)) == 0)
	{
		if (c->len >= MAX_HEADER_BYTES)
		{
			snprintf(err, errlen, "response headers too large");
			return -1;
		}
		rc = recv_more(c, err, errlen);
		if (c->len > 0)
			*got_any = true;
		if (rc <= 0)
			return -1;
	}
	*got_any = true;

	/* status line: HTTP/1.x NNN reason */
	if (hend < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0 || c->buf[8] != ' ' ||
		c->buf[9] < '1' || c->buf[9] > '5' || c->buf[10] < '0' || c->buf[10] > '9' ||
		c->buf[11] < '0' || c->buf[11] > '9')
	{
		snprintf(err, errlen, "bad status line");
		return -1;
	}
	resp->status = (c->buf[9] - '0') * 100 + (c->buf[10] - '0') * 10 + (c->buf[11] - '0');
	if (c->buf[7] == '0')
		close_after = true;		/* HTTP/1.0 closes unless told otherwise */

	/* headers */
	line = memchr(c->buf, '\n', hend) + 1;
	while (line < c->buf + hend - 2)
	{
		const char *eol = memchr(line, '\n', (size_t) (c->buf + hend - line));
		const char *colon = memchr(line, ':', (size_t) (eol - line));
		const char *v;
		size_t		vlen;

		if (colon)
		{
			size_t		nlen = (size_t) (colon - line);

			v = colon + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			vlen = (size_t) (eol - v);
			while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0)
			{
				clen = 0;
				for (size_t i = 0; i < vlen; i++)
				{
					if (v[i] < '0' || v[i] > '9' || clen > MAX_BODY_BYTES)
					{
						snprintf(err, errlen, "bad Content-Length");
						return -1;
					}
					clen = clen * 10 + (v[i] - '0');
				}
			}
			else if (nlen == 10 && strncasecmp(line, "Connection", 10) == 0)
			{
				if (vlen >= 5 && strncasecmp(v, "close", 5) == 0)
					close_after = true;
				else if (vlen >= 10 && strncasecmp(v, "keep-alive", 10) == 0)
					close_after = false;
			}
			else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0)
				chunked = true;
		}
		line = eol + 1;
	}
	if (chunked)
	{
		snprintf(err, errlen, "chunked responses are not supported");
		return -1;
	}
	if (clen > MAX_BODY_BYTES)
	{
		snprintf(err, errlen, "response body too large");
		return -1;
	}

	if (clen >= 0)
	{
		while (c->len < hend + (size_t) clen)
		{
			rc = recv_more(c, err, errlen);
			if (rc <= 0)
				return -1;
		}
	}
	else
	{
		/* no length: the body ends when the server closes */
		while ((rc = recv_more(c, err, errlen)) > 0)
			;
		if (rc < 0)
			return -1;
		clen = (long long) (c->len - hend);
		close_after = true;
	}
	resp->body = c->buf + hend;
	resp->body_len = (size_t) clen;
	c->consumed = hend + (size_t) clen;
	c->nreq++;
	if (close_after)
	{
		/* keep the body readable: close the socket but not the buffer */
		close(c->fd);
		c->fd = -1;
	}
	return 0;
}

int
http_request(http_conn *c, const char *method, const char *path,
			 const char *body, size_t body_len, http_response *resp,
			 char *err, size_t errlen)
{
	for (int attempt = 0; attempt < 2; attempt++)
	{
		bool		reused = c->fd >= 0 && c->nreq > 0;
		bool		got_any;
		int			hlen;
		size_t		need;

		c->peer_closed = false;
		if (c->fd < 0 && open_socket(c, err, errlen) < 0)
			return -1;

		need = 512 + strlen(path) + strlen(c->target->base_path) +
			strlen(c->target->host_header) + body_len;
		if (need > c->reqcap)
		{
			char	   *nr = realloc(c->req, need);

			if (nr == NULL)
			{
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			c->req = nr;
			c->reqcap = need;
		}
		if (body)
			hlen = snprintf(c->req, c->reqcap,
							"%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rk_loadgen\r\n"
							"Accept: application/json\r\nContent-Type: application/json\r\n"
							"Content-Length: %zu\r\n\r\n",
							method, c->target->base_path, path, c->target->host_header,
							body_len);
		else
			hlen = snprintf(c->req, c->reqcap,
							"%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rk_loadgen\r\n"
							"Accept: application/json\r\n\r\n",
							method, c->target->base_path, path, c->target->host_header);
		if (hlen < 0 || (size_t) hlen + body_len > c->reqcap)
		{
			snprintf(err, errlen, "request too large");
			return -1;
		}
		if (body)
			memcpy(c->req + hlen, body, body_len);

		if (send_all(c, c->req, (size_t) hlen + (body ? body_len : 0), err, errlen) < 0)
		{
			http_conn_close(c);
			if (reused && c->peer_closed && attempt == 0)
				continue;
			return -1;
		}
		if (read_response(c, resp, &got_any, err, errlen) < 0)
		{
			http_conn_close(c);
			/* a kept-alive socket the server closed meanwhile: resend once */
			if (reused && c->peer_closed && !got_any && attempt == 0)
				continue;
			return -1;
		}
		return 0;
	}
	return -1;
}
