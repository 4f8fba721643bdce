/*
 * http.h
 *		A minimal HTTP/1.1 client for the load generator: one keep-alive
 *		connection per thread over a plain TCP socket.
 *
 * It speaks exactly what the benchmark needs: send a request with an optional
 * body, read the status line, the headers and a Content-Length body (or a body
 * that ends when the server closes).  Chunked responses are reported as
 * errors; rk_social never sends them.
 */
#ifndef RK_HTTP_H
#define RK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct http_target
{
	struct sockaddr_storage addr;
	socklen_t	addrlen;
	char		host_header[300];	/* host[:port] as given in the URL */
	char		base_path[256];		/* path prefix from the URL, no trailing '/' */
	char		display[600];		/* the URL, for printing */
} http_target;

typedef struct http_conn
{
	const http_target *target;
	int			fd;				/* -1 while not connected */
	int			timeout_ms;		/* connect, send and receive timeout */
	unsigned long nreq;			/* requests answered on this socket */
	bool		peer_closed;	/* last failure was EOF/reset from the server */
	char	   *buf;			/* bytes received */
	size_t		len;
	size_t		cap;
	size_t		consumed;		/* bytes of buf belonging to answered requests */
	char	   *req;			/* request being built */
	size_t		reqcap;
} http_conn;

typedef struct http_response
{
	int			status;
	const char *body;			/* valid until the next request on the conn */
	size_t		body_len;
} http_response;

/* Parse http://host[:port][/prefix] and resolve host; false with *err set. */
extern bool http_parse_url(const char *url, http_target *t, char *err, size_t errlen);

extern void http_conn_init(http_conn *c, const http_target *t, int timeout_ms);
extern void http_conn_close(http_conn *c);
extern void http_conn_free(http_conn *c);

/*
 * Send one request (path is appended to the target's prefix; body may be
 * NULL) and read the answer.  Returns 0 when a complete response was read,
 * -1 on a socket or protocol error (err says what; the socket is closed and
 * the next request reconnects).  A request on a reused socket that the server
 * had already closed is resent once on a fresh socket.
 */
extern int	http_request(http_conn *c, const char *method, const char *path,
						 const char *body, size_t body_len, http_response *resp,
						 char *err, size_t errlen);

#endif							/* RK_HTTP_H */
