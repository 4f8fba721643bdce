/*
 * nfq_delay: hold every packet of an NFQUEUE queue for a fixed time, then
 * let it go.  The fault soak's delay (tools/soak): this kernel has no
 * sch_netem, but iptables' NFQUEUE target hands packets to user space,
 * which may give its verdict whenever it likes.
 *
 *   nfq_delay QUEUE_NUM DELAY_MS
 *
 * Packets leave in the order they came, DELAY_MS late (the one clock is
 * CLOCK_MONOTONIC).  On SIGTERM or SIGINT every packet still held is let go
 * at once, and it exits.  Run it before the iptables rule that feeds the
 * queue goes in (with --queue-bypass the rule lets packets through while
 * nobody listens), and delete the rule before stopping it.
 *
 * Build: gcc -O2 -o nfq_delay nfq_delay.c -lnetfilter_queue
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define HELD_MAX 65536			/* packets held at once; beyond, one goes early */

static struct
{
	uint32_t	id;
	int64_t		due_ms;
}			held[HELD_MAX];
static unsigned head,
			count;
static int64_t delay_ms;
static struct nfq_q_handle *queue;
static volatile sig_atomic_t stopping;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
release_oldest(void)
{
	nfq_set_verdict(queue, held[head].id, NF_ACCEPT, 0, NULL);
	head = (head + 1) % HELD_MAX;
	count--;
}

static int
on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data)
{
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);

	(void) qh;
	(void) msg;
	(void) data;
	if (ph == NULL)
		return 0;
	if (count == HELD_MAX)
		release_oldest();
	held[(head + count) % HELD_MAX].id = ntohl(ph->packet_id);
	held[(head + count) % HELD_MAX].due_ms = now_ms() + delay_ms;
	count++;
	return 0;
}

static void
on_signal(int sig)
{
	(void) sig;
	stopping = 1;
}

int
main(int argc, char **argv)
{
	struct nfq_handle *h;
	char		buf[65536] __attribute__((aligned));
	int			fd;

	if (argc != 3)
	{
		fprintf(stderr, "usage: nfq_delay QUEUE_NUM DELAY_MS\n");
		return 2;
	}
	delay_ms = atoll(argv[2]);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	h = nfq_open();
	if (h == NULL)
	{
		perror("nfq_open");
		return 1;
	}
	queue = nfq_create_queue(h, (uint16_t) atoi(argv[1]), on_packet, NULL);
	if (queue == NULL)
	{
		perror("nfq_create_queue");
		return 1;
	}
	/* The verdict needs the id only. */
	if (nfq_set_mode(queue, NFQNL_COPY_META, 0) < 0 ||
		nfq_set_queue_maxlen(queue, HELD_MAX) < 0)
	{
		perror("nfq_set_mode");
		return 1;
	}
	/* A queue the kernel finds full lets packets through rather than drop them. */
	nfq_set_queue_flags(queue, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
	fd = nfq_fd(h);
	printf("nfq_delay: queue %s, %lld ms\n", argv[1], (long long) delay_ms);
	fflush(stdout);

	while (!stopping)
	{
		struct pollfd pfd = {.fd = fd,.events = POLLIN};
		int64_t		wait = 100;
		ssize_t		n;

		if (count > 0)
		{
			wait = held[head].due_ms - now_ms();
			if (wait < 0)
				wait = 0;
		}
		if (poll(&pfd, 1, (int) wait) > 0)
		{
			while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
				nfq_handle_packet(h, buf, (int) n);
			/* ENOBUFS: the kernel dropped messages it could not deliver; go on. */
		}
		while (count > 0 && held[head].due_ms <= now_ms())
			release_oldest();
	}
	while (count > 0)
		release_oldest();
	nfq_destroy_queue(queue);
	nfq_close(h);
	return 0;
}
