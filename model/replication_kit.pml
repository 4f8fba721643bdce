/*
 * replication_kit.pml: a Promela model of what the workers' state table
 * does (core/fsm.c), for SPIN.  See model/README.md for what each part
 * stands for in the C code, what is checked, and what is left out.
 *
 * Three nodes.  Node 0 founds term 1 as the primary; nodes 1 and 2 are its
 * synchronous standbys (ANY 1 over the two: k = 1, n = 2, so a candidate
 * must hear from n - k + 1 = 2 of them, itself included).
 *
 * Every step of the one process `world' is atomic: a worker's whole round
 * (probes, the event, the row's action, its follow-ups), a vote, a commit's
 * steps, a WAL receiver's copy, a tick of the clock, a fault.  Other nodes
 * are read and written directly where the C code makes a call to them;
 * a call that is lost is a nondeterministic choice (bounded by MAXLOSS).
 *
 * Compile-time switches re-introduce the holes of the safety issue; with
 * each of them SPIN must find a counterexample (tools/model checks that):
 *   HOLE_A  a deposed primary's newer term and standby.signal stay in memory
 *   HOLE_B  a restarting old primary that is not confirmed takes over on its
 *           own vote: raises the term itself and takes the lease
 *   HOLE_C  a voter keeps streaming from the old primary after its vote
 *   HOLE_D  the lease is measured on a clock that can lag (stepped wall clock)
 *   NO_SECOND_LOOK  the commit guard does not look again after the wait
 *           for the synchronous standby (core/guard.c confirm_acknowledgement)
 * Other switches:
 *   LIVE      the faults may stop; then a primary must exist within KLIVE ticks
 *   LIVE_ALL  ... only once every node runs again (LIVE's premise: a majority)
 *   KITLESS   the fault "a deposed primary restarted without the library"
 *   OLD_DEPOSAL  the code before 8ad482f: a primary deposed by its own
 *           probes keeps the deposal in memory only (findings F1/F2,
 *           model/README.md); without it the model has FIX_DEPOSAL, the code
 *   MAXTERM, MAXCOMMITS, MAXF, MAXLOSS, MAXOPS, KLIVE  the bounds
 */

#ifndef OLD_DEPOSAL
#define FIX_DEPOSAL
#endif

#define N        3
#define NONE     3          /* no node */
#define MAJ      2          /* majority of 3 */
#define NSYNC    2          /* n - k + 1 with n = 2 listed standbys, k = 1 */

/* Time, in ticks of the monotonic clock (CLOCK_BOOTTIME), same rate on
 * every node (README, "Limits": the lease assumes clocks run at the same
 * rate).  probe_interval = probe_timeout = 1 tick. */
#define FT       3          /* failover_timeout */
#define LEASE    2          /* effective fence_timeout = failover_timeout - probe_interval */
#define SEEN     2          /* probe_interval + probe_timeout: PRIMARY_SEEN below this */

#ifndef MAXTERM
#define MAXTERM  4          /* term 1 founded, at most 3 elections */
#endif
#ifndef MAXCOMMITS
#define MAXCOMMITS 2        /* client commits over the whole run */
#endif
#ifndef MAXF
#define MAXF     2          /* crashes, pauses, link cuts, operator promotes, restores */
#endif
#ifndef MAXLOSS
#define MAXLOSS  1          /* lost calls (probe, vote request or answer, fence) */
#endif
#ifndef MAXOPS
#define MAXOPS   1          /* rk_failover / rk_switchover requests */
#endif
#ifndef KLIVE
#define KLIVE    8          /* ticks after the faults stop within which a primary must exist */
#endif
/* WAL entries: commits, promotions (end-of-recovery records) and one
 * operator's pg_promote; ids are unique, so "the same WAL" is "the same ids". */
#define MAXID    (MAXCOMMITS + MAXTERM)
#define L        MAXID

/* Worker states (core/fsm.h RkState); FOLLOWING, SUSPECTING and
 * PRIMARY_LOST differ only in what they log, and are one state here. */
#define IDLE      0
#define PRIMARY   1
#define FENCED    2
#define STANDBY   3
#define PROMOTING 4
#define REJOINING 5

/* Events (core/fsm.h RkEvent) */
#define EV_NONE        0
#define EV_IS_PRIMARY  1
#define EV_NOT_ELECTED 2
#define EV_IS_STANDBY  3
#define EV_MANUAL      4
#define EV_MAJ_OK      5
#define EV_LEASE_RUN   6
#define EV_MAJ_LOST    7
#define EV_DEPOSED     8
#define EV_SEEN        9
#define EV_SILENT      10
#define EV_DEAD        11
#define EV_NEW_PRIMARY 12

/* Vote modes (rk_request_vote's mode) and refusals (RkRefusal) */
#define M_AUTO    1
#define M_MANUAL  2
#define M_FORCE   3
#define R_NONE      0
#define R_OLD_TERM  1
#define R_NOT_STANDBY 2
#define R_CONTACT   3
#define R_RECEIVES  4
#define R_RECENT    5
#define R_MORE_WAL  6

/* ---- durable: PGDATA/replication_kit.state, standby.signal, postgresql.auto.conf, WAL ---- */
byte term[N];        /* st.term */
byte vterm[N];       /* st.voted_term */
byte vfor[N];        /* st.voted_for */
byte won[N];         /* st.won_term */
byte pname[N];       /* st.primary_name */
bool roleprim[N];    /* st.role = "primary" (the fence at start runs) */
bool sig[N];         /* standby.signal */
byte upst[N];        /* primary_conninfo points here */
bool rjp[N];         /* st.rejoin_pending: an old primary restarted as a standby, not following yet */
byte wal[N*L];       /* WAL: entry ids, in order */
byte lsn[N];         /* flushed WAL length */
#ifdef HOLE_A
byte dterm[N];       /* what the state file holds when the deposal stays in memory */
byte dpname[N];
#endif

/* ---- memory: shared memory, the worker's context, the server's role ---- */
bool up[N];          /* the server runs */
bool paused[N];      /* SIGSTOPped: no steps, no answers; its clock runs on */
bool kitless[N];     /* started without the library preloaded: no worker, no guard */
bool rec[N];         /* RecoveryInProgress() */
bool fenced[N];      /* rk_shared->fenced */
byte ftarget[N];     /* rk_shared->fence_target: the handover's target */
byte lease[N];       /* ticks until rk_shared->lease_until */
byte silence[N];     /* ticks since last_seen_primary_ms (saturates at FT) */
byte svote[N];       /* ticks since last_vote_ms (saturates at FT) */
byte wst[N];         /* the worker's state */
byte wonpend[N];     /* ctx->won_term */
bool promo[N];       /* pg_promote() under way */
byte req[N];         /* an operator's request waiting for this worker (M_MANUAL, M_FORCE) */
byte pend[N];        /* a backend's commit record waiting for the synchronous standby */
bool plocal[N];      /* ... with synchronous_commit = local */
bool released[N];    /* ... and a standby's flush released it */
bool done[N];        /* ran a round since the last tick */
byte regp;           /* the registry's primary (rk_nodes.role), replication lag left out */

/* ---- network ---- */
bool link[3];        /* links 0-1, 0-2, 1-2 */

/* ---- ghosts: what the properties are about ---- */
byte acked;          /* ids of commits acknowledged to a client after a synchronous wait */
byte walset[N];      /* the ids in each node's WAL, as a bit set */
byte etli[MAXID+1];  /* the timeline each entry was written on */
byte nextid;
byte maxtli;
byte owner[MAXTERM+1];   /* who won each term */
bool learnt[N];      /* this primary has learned of a newer term (it was deposed) */
byte faults, losses, ops, commits;
bool calm;           /* the faults have stopped */
byte calm_ticks;

/*
 * The properties, by name: each is a constant false, asserted where the
 * property fails, so that pan's "assertion violated" line names it.
 */
bool P1_at_most_one_node_can_acknowledge;
bool P2_at_most_one_primary_per_term;
bool P3_acknowledged_commit_in_every_later_primary;
bool P4_deposed_primary_never_acknowledges_again;
bool P5_primary_within_KLIVE_ticks_of_calm;

/* scratch of one step; every step ends with clear(), so they add no states
 * (not `hidden': a step backtracks over its own choices) */
byte h_j, h_k, h_t, h_p, h_best, h_ev, h_sup, h_maj, h_max, h_new, h_prim, h_mode;
byte h_votes, h_heard, h_ref, pk;
bool h_dep, h_contact, h_ok, h_more, h_won, pres, h_got;
bool h_ans[N];

inline clear()
{
	h_j = 0; h_k = 0; h_t = 0; h_p = 0; h_best = 0; h_ev = 0; h_sup = 0; h_maj = 0; h_max = 0;
	h_new = 0; h_prim = 0; h_mode = 0; h_votes = 0; h_heard = 0; h_ref = 0; pk = 0;
	h_dep = 0; h_contact = 0; h_ok = 0; h_more = 0; h_won = 0; pres = 0; h_got = 0;
	h_ans[0] = 0; h_ans[1] = 0; h_ans[2] = 0
}

#define LINK(a,b)     ((a) == (b) || link[(a) + (b) - 1])
#define RUNNING(j)    (up[j] && !paused[j])
/* a node-to-node call from i is answered by j (rk_peer_state, rk_request_vote, rk_peer_fence) */
#define REACH(i,j)    (RUNNING(j) && !kitless[j] && LINK(i,j))
/* rk_state_elected() */
#define ELECTED(i)    (won[i] > 0 && won[i] == term[i])
/* the primary_name rk_peer_state answers: in recovery a node names itself
 * only as the winner being promoted */
#define APNAME(j)     (rec[j] && ELECTED(j) -> j : (rec[j] && pname[j] == j -> NONE : pname[j]))
/* ... and what the other consumers of the answer take from it (worker.c's
 * probe, fence at start): a winner being promoted names no primary yet */
#define NAMED(j)      (rec[j] && APNAME(j) == j -> NONE : APNAME(j))
/* rk_acknowledges_commits(): the guard would let a commit through */
#define ACKS(i)       (up[i] && !rec[i] && !kitless[i] && !fenced[i] && ELECTED(i) && lease[i] > 0)
/* can acknowledge a commit at this instant (a node without the kit has no guard) */
#define CAN_ACK(i)    (up[i] && !rec[i] && (kitless[i] || (!fenced[i] && ELECTED(i) && lease[i] > 0)))
#define TLI(i)        (lsn[i] == 0 -> 1 : etli[wal[(i)*L + lsn[i] - 1]])
/* (timeline, LSN) of a is ahead of b's: the winner rule */
#define MOREWAL(a,b)  (TLI(a) > TLI(b) || (TLI(a) == TLI(b) && lsn[a] > lsn[b]))
#define HASACKED(i)   ((acked & walset[i]) == acked)
/* the vote j gave in its current term, as rk_peer_state reports it */
#define VFOR(j)       (vterm[j] == term[j] -> vfor[j] : NONE)

/* ----------------------------------------------------------------- */
/* WAL                                                                */

/* pres := the WAL of a is a prefix of the WAL of b (same history) */
inline is_prefix(ip_a, ip_b)
{
	pres = (lsn[ip_a] <= lsn[ip_b]);
	pk = 0;
	do
	:: pres && pk < lsn[ip_a] -> pres = (wal[(ip_a)*L + pk] == wal[(ip_b)*L + pk]); pk++
	:: else -> break
	od;
	pk = 0
}

/* a primary writes one WAL record (a commit, or its end-of-recovery record) */
inline append(a_i, a_tl)
{
	nextid++;
	etli[nextid] = a_tl;
	wal[(a_i)*L + lsn[a_i]] = nextid;
	walset[a_i] = walset[a_i] | (1 << nextid);
	lsn[a_i]++
}

/* a WAL receiver copies what its upstream has beyond its own end */
inline copy_from(cf_s, cf_u)
{
	pk = lsn[cf_s];
	do
	:: pk < lsn[cf_u] ->
		wal[(cf_s)*L + pk] = wal[(cf_u)*L + pk];
		walset[cf_s] = walset[cf_s] | (1 << wal[(cf_u)*L + pk]);
		pk++
	:: else -> break
	od;
	lsn[cf_s] = lsn[cf_u];
	pk = 0
}

/* pg_rewind: back to where the two histories part */
inline rewind_to(rt_s, rt_u)
{
	pk = 0;
	do
	:: pk < lsn[rt_s] && pk < lsn[rt_u] && wal[(rt_s)*L + pk] == wal[(rt_u)*L + pk] -> pk++
	:: else -> break
	od;
	lsn[rt_s] = pk;
	walset[rt_s] = 0;
	pk = 0;
	do
	:: pk < L ->
		if
		:: pk < lsn[rt_s] -> walset[rt_s] = walset[rt_s] | (1 << wal[(rt_s)*L + pk])
		:: else -> wal[(rt_s)*L + pk] = 0
		fi;
		pk++
	:: else -> break
	od;
	pk = 0
}

/* ----------------------------------------------------------------- */
/* The node state file (core/state_file.c)                            */

/*
 * rk_state_save_locked(): a primary that learns of a term newer than the
 * one it won writes standby.signal (fsynced) before the term.  Called
 * after every change of the state.  With HOLE_A, that deposal stays in
 * memory: no standby.signal, and the file keeps the old term.
 */
inline saved(s_i)
{
#ifdef HOLE_A
	if
	:: !rec[s_i] && won[s_i] > 0 && term[s_i] > won[s_i] -> skip
	:: else -> dterm[s_i] = term[s_i]; dpname[s_i] = pname[s_i]
	fi
#else
	if
	:: !rec[s_i] && won[s_i] > 0 && term[s_i] > won[s_i] -> sig[s_i] = 1
	:: else -> skip
	fi
#endif
}

/* ghost: a primary of its term learns of a newer one */
inline learns(l_i)
{
#ifdef KITLESS
	if
	:: !rec[l_i] && ELECTED(l_i) -> learnt[l_i] = 1
	:: else -> skip
	fi
#else
	skip
#endif
}

/* adopt_term() (worker/worker.c): terms only grow; a primary in good
 * standing carries its win over to a newer term nobody won */
inline adopt_term(at_i, at_t, at_p)
{
	if
	:: at_t > term[at_i] || (at_t == term[at_i] && pname[at_i] != at_p) ->
		if
		:: at_t > term[at_i] -> vfor[at_i] = NONE; vterm[at_i] = 0
		:: else -> skip
		fi;
		if
		:: at_p == at_i && ELECTED(at_i) && !fenced[at_i] -> won[at_i] = at_t
		:: else -> skip
		fi;
		term[at_i] = at_t;
		pname[at_i] = at_p;
		saved(at_i)
	:: else -> skip
	fi
}

/* ----------------------------------------------------------------- */
/* Calls between nodes                                                */

/* a call may be lost (or time out) while faults are allowed */
inline lossy(l_ok)
{
	if
	:: l_ok = 1
	:: !calm && losses < MAXLOSS -> l_ok = 0; losses++; printf("MC FAULT a call is lost\n")
	fi
}

/*
 * rk_peer_state(caller i) on node j (extension/peer_api.c): a call from a
 * primary in good standing, in a term no older than j's, is contact with
 * the primary for a standby; a primary of an older term is deposed by it.
 */
inline peer_state_call(psc_i, psc_j)
{
	if
	:: !rec[psc_i] && ELECTED(psc_i) && !fenced[psc_i] && term[psc_i] >= term[psc_j] ->
		if
		:: rec[psc_j] ->
			term[psc_j] = term[psc_i]; pname[psc_j] = psc_i; silence[psc_j] = 0; saved(psc_j)
		:: !rec[psc_j] && term[psc_i] > term[psc_j] ->
			learns(psc_j);
			fenced[psc_j] = 1; term[psc_j] = term[psc_i]; pname[psc_j] = psc_i; saved(psc_j)
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* rk_walreceiver_hears_primary() and not rk_upstream_answers_fenced_locked() */
#define HEARS(j) (upst[j] != NONE && upst[j] != j && RUNNING(upst[j]) && LINK(j, upst[j]) && !rec[upst[j]] && ACKS(upst[j]))

/*
 * judge_vote() (extension/peer_api.c): may voter j vote for candidate c in
 * term t?  Sets h_ref.
 */
inline judge_vote(jv_j, jv_c, jv_t, jv_mode)
{
	if
	:: jv_t < term[jv_j] || (jv_t == term[jv_j] && vterm[jv_j] == jv_t && vfor[jv_j] != NONE && vfor[jv_j] != jv_c) -> h_ref = R_OLD_TERM
	:: else ->
	if
	:: !rec[jv_j] -> h_ref = R_NOT_STANDBY
	:: rec[jv_j] && ELECTED(jv_j) && jv_c != jv_j -> h_ref = R_OLD_TERM   /* the winner, being promoted */
	:: else ->
	if
	:: jv_mode != M_FORCE && silence[jv_j] < (jv_mode == M_AUTO -> FT : LEASE) -> h_ref = R_CONTACT
	:: jv_mode != M_FORCE && HEARS(jv_j) && upst[jv_j] != jv_c -> h_ref = R_RECEIVES
	:: jv_mode != M_FORCE && svote[jv_j] < FT && vterm[jv_j] < jv_t && vfor[jv_j] != NONE && vfor[jv_j] != jv_c -> h_ref = R_RECENT
	:: MOREWAL(jv_j, jv_c) -> h_ref = R_MORE_WAL
	:: else -> h_ref = R_NONE
	fi
	fi
	fi
}

/*
 * rk_request_vote(candidate c, term t) on voter j: judged, then (before it
 * is granted) the voter points its WAL receiver at the candidate and its
 * stream from the old primary ends (leave_old_stream); the vote is on disk
 * before the answer leaves.
 */
inline request_vote(rv_j, rv_c, rv_t, rv_mode)
{
	judge_vote(rv_j, rv_c, rv_t, rv_mode);
	printf("MC   n%d asked to vote for n%d in term %d: refusal %d\n", rv_j, rv_c, rv_t, h_ref);
	if
	:: h_ref == R_NONE ->
#ifndef HOLE_C
		upst[rv_j] = rv_c;
#endif
		term[rv_j] = rv_t; vterm[rv_j] = rv_t; vfor[rv_j] = rv_c; pname[rv_j] = NONE;
		svote[rv_j] = 0;
		saved(rv_j)
	:: else -> skip
	fi
}

/* ----------------------------------------------------------------- */
/* Elections (worker/election.c)                                      */

/* begin_term(): a new term with a vote for itself, on disk first.
 * h_t = 0 when the model's bound on terms is reached. */
inline begin_term(bt_i)
{
	h_t = term[bt_i];
	for (h_j : 0 .. N-1) {
		if
		:: h_ans[h_j] && term[h_j] > h_t -> h_t = term[h_j]
		:: else -> skip
		fi
	}
	h_t++;
	if
	:: h_t <= MAXTERM ->
		term[bt_i] = h_t; vterm[bt_i] = h_t; vfor[bt_i] = bt_i; pname[bt_i] = NONE;
		saved(bt_i)
	:: else -> h_t = 0
	fi
}

/* rk_best_candidate(): the standby with the most WAL among this node and
 * the standbys that answered; ties by synchronous priority, then name
 * (both: the lower index) */
inline best_candidate(bc_i)
{
	h_best = NONE;
	for (h_j : 0 .. N-1) {
		if
		:: (h_j == bc_i && rec[bc_i]) || (h_j != bc_i && h_ans[h_j] && rec[h_j] && h_j != h_prim) ->
			if
			:: h_best == NONE || MOREWAL(h_j, h_best) ||
			   (TLI(h_j) == TLI(h_best) && lsn[h_j] == lsn[h_best] && h_j < h_best) -> h_best = h_j
			:: else -> skip
			fi
		:: else -> skip
		fi
	}
}

/*
 * election.c holds_none_of_primary(): a node out of recovery that
 * acknowledges nothing, on a timeline older than the known primary's, is a
 * heard synchronous member for a candidate on the primary's timeline
 */
#define HOLDS_NONE(j, c) (h_prim != NONE && (j) != h_prim && !rec[j] && !ACKS(j) && \
                          TLI(j) < TLI(h_prim) && TLI(c) == TLI(h_prim))

/* rk_quorum_ready(): the pre-vote, from this round's probes (h_ok) */
inline quorum_ready(qr_i)
{
	h_ok = 1; h_sup = 0; h_maj = 0;
	for (h_j : 0 .. N-1) {
		if
		:: h_j != qr_i && h_ans[h_j] && HOLDS_NONE(h_j, qr_i) -> h_sup++
		:: else -> skip
		fi;
		if
		:: h_j == qr_i || (h_ans[h_j] && rec[h_j]) ->
			if                          /* reachable: a voter; the known primary once it could vote */
			:: h_j != h_prim || h_j == qr_i || silence[h_j] >= FT -> h_maj++
			:: else -> skip
			fi;
			if
			:: h_j != h_prim ->
				h_sup++;                /* heard as a synchronous member */
				if
				:: h_j != qr_i && silence[h_j] < FT -> h_ok = 0
				:: else -> skip
				fi
			:: else -> skip
			fi
		:: else -> skip
		fi
	}
	if
	:: rec[qr_i] && HEARS(qr_i) -> h_ok = 0
	:: else -> skip
	fi;
	/* promotion_elsewhere(): a winner being promoted is waited for (its
	 * pg_promote() finishes, or it stops answering, in a step of its own) */
	for (h_j : 0 .. N-1) {
		if
		:: h_j != qr_i && h_ans[h_j] && APNAME(h_j) == h_j && rec[h_j] && term[h_j] >= term[qr_i] -> h_ok = 0
		:: else -> skip
		fi
	}
	if
	:: h_maj < MAJ || h_sup < NSYNC -> h_ok = 0
	:: else -> skip
	fi
}

/*
 * run_election() with request_votes(): h_won says whether candidate i won
 * term h_t.  A voter with more WAL stops it whatever it answered; not even
 * force promotes without a majority here (see the README: the forced
 * failover that shrinks the quorum is left out).
 */
inline run_election(re_i, re_mode)
{
	h_votes = 1; h_heard = 1; h_more = 0;
	for (h_k : 0 .. N-1) {
		if
		:: h_k != re_i && REACH(re_i, h_k) ->
			lossy(h_got);
			if
			:: h_got ->
				request_vote(h_k, re_i, h_t, re_mode);
				lossy(h_got);           /* the answer may be lost after the vote is on disk */
				if
				:: h_got ->
					if
					:: h_ref == R_NONE -> h_votes++
					:: else -> skip
					fi;
					if
					:: h_ref == R_NOT_STANDBY && HOLDS_NONE(h_k, re_i) -> h_heard++
					:: h_ref == R_NOT_STANDBY && !HOLDS_NONE(h_k, re_i) -> skip
					:: h_ref != R_NOT_STANDBY && (h_ref == R_MORE_WAL || MOREWAL(h_k, re_i)) -> h_more = 1
					:: h_ref != R_NOT_STANDBY && !(h_ref == R_MORE_WAL || MOREWAL(h_k, re_i)) && h_k != h_prim -> h_heard++
					:: else -> skip
					fi
				:: else -> skip
				fi
			:: else -> skip
			fi
		:: else -> skip
		fi
	}
	h_won = (!h_more && h_votes >= MAJ && (re_mode == M_FORCE || h_heard >= NSYNC));
	printf("MC n%d election for term %d (mode %d): %d votes, %d heard, more WAL %d: won %d\n", re_i, h_t, re_mode, h_votes, h_heard, h_more, h_won)
}

/*
 * rk_act_promote(): the win goes on disk (won_term) before pg_promote();
 * the votes are the lease.  pg_promote() itself finishes in a step of its
 * own (promote_done).
 */
inline act_promote(ap_i)
{
	if
	:: term[ap_i] == wonpend[ap_i] ->
		printf("MC n%d won term %d: promotes\n", ap_i, wonpend[ap_i]);
		if
		:: !(owner[wonpend[ap_i]] == NONE || owner[wonpend[ap_i]] == ap_i) -> assert(P2_at_most_one_primary_per_term)
		:: else -> skip
		fi;
		owner[wonpend[ap_i]] = ap_i;
		won[ap_i] = wonpend[ap_i];
		saved(ap_i);
		lease[ap_i] = LEASE;           /* rk_grant_lease(v, won_at_ms) */
		promo[ap_i] = 1;
		wst[ap_i] = PROMOTING
	:: else -> skip
	fi
}

/* rk_act_elect(): FOLLOWING/SUSPECTING/PRIMARY_LOST --PRIMARY_DEAD--> */
inline act_elect(ae_i)
{
	best_candidate(ae_i);
	quorum_ready(ae_i);
	if
	:: h_ok && h_best == ae_i ->
		begin_term(ae_i);
		if
		:: h_t > 0 ->
			run_election(ae_i, M_AUTO);
			if
			:: h_won -> wonpend[ae_i] = h_t; act_promote(ae_i)     /* ELECTION_WON --> PROMOTING */
			:: else -> skip
			fi
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/*
 * rk_act_manual_failover(): an operator's rk_failover() (M_MANUAL) or
 * rk_failover(force => true) / rk_switchover() (M_FORCE) to this standby.
 */
inline act_manual(am_i)
{
	h_mode = req[am_i];
	req[am_i] = 0;
	h_won = 0;
	if
	:: h_prim != NONE && h_prim != am_i && silence[am_i] < LEASE ->
		/* the primary is up: only force or a switchover, which fence it first */
		if
		:: h_mode == M_FORCE ->
			/* failover_from_live_primary() */
			begin_term(am_i);
			h_p = h_prim;
			if
			:: h_t > 0 && REACH(am_i, h_p) ->
				lossy(h_got);
				if
				:: h_got && h_t >= term[h_p] ->
					/* rk_peer_fence() on the primary */
					if
					:: !rec[h_p] -> learns(h_p); fenced[h_p] = 1; ftarget[h_p] = am_i
					:: else -> skip
					fi;
					term[h_p] = h_t; pname[h_p] = am_i; saved(h_p);
					/* catch_up_to(): this node streams from the fenced primary */
					is_prefix(am_i, h_p);
					if
					:: pres && upst[am_i] == h_p && LINK(am_i, h_p) ->
						copy_from(am_i, h_p);
						run_election(am_i, M_FORCE)
					:: else -> skip
					fi
				:: else -> skip
				fi
			:: else -> skip
			fi
		:: else -> skip
		fi
	:: else ->
		/* the primary is unreachable: a forced failover without it is left out */
		if
		:: h_mode == M_MANUAL ->
			quorum_ready(am_i);
			if
			:: h_ok ->
				begin_term(am_i);
				if
				:: h_t > 0 -> run_election(am_i, M_MANUAL)
				:: else -> skip
				fi
			:: else -> skip
			fi
		:: else -> skip
		fi
	fi;
	if
	:: h_won -> wonpend[am_i] = h_t; act_promote(am_i)
	:: else -> skip
	fi
}

/* ----------------------------------------------------------------- */
/* The primary's side (worker/follow.c, worker/rejoin.c)              */

/* rk_act_take_over(): PROMOTING --IS_PRIMARY--> PRIMARY */
inline act_take_over(ato_i)
{
	if
	:: ELECTED(ato_i) ->
		pname[ato_i] = ato_i; roleprim[ato_i] = 1; saved(ato_i);
		fenced[ato_i] = 0;
		regp = ato_i
		/* the lease from the votes was granted before pg_promote() */
	:: else -> fenced[ato_i] = 1      /* never take over without having won */
	fi
}

/* a restart: what lived in memory is gone */
inline forget(f_i)
{
	fenced[f_i] = 0; ftarget[f_i] = NONE; lease[f_i] = 0;
	silence[f_i] = 0;              /* a restarted node gives the primary a full failover_timeout */
	svote[f_i] = FT;               /* last_vote_ms is in shared memory: forgotten */
	wst[f_i] = IDLE; wonpend[f_i] = 0; promo[f_i] = 0; req[f_i] = 0;
	pend[f_i] = 0; plocal[f_i] = 0; released[f_i] = 0; done[f_i] = 0;
	paused[f_i] = 0; kitless[f_i] = 0
}

/*
 * rk_act_rejoin() and the rk_rejoin helper: FENCED --DEPOSED--> REJOINING.
 * Point at the primary of the newer term, write standby.signal, and
 * restart as its standby (the rewind happens when it streams).
 */
inline act_rejoin(ar_i)
{
	if
	:: pname[ar_i] != NONE && pname[ar_i] != ar_i ->
		upst[ar_i] = pname[ar_i];
		sig[ar_i] = 1; rjp[ar_i] = 1;
		roleprim[ar_i] = 0;
		vfor[ar_i] = NONE;
		saved(ar_i);
		forget(ar_i);
		rec[ar_i] = 1
	:: else -> wst[ar_i] = REJOINING     /* waiting to learn which node is the primary */
	fi
}

/* ----------------------------------------------------------------- */
/* One round of a worker (worker/worker.c worker_round, core/fsm.c)   */

/* primary_event(): who still answers this primary as its primary? */
inline primary_event(pe_i)
{
	h_dep = (fenced[pe_i] || !ELECTED(pe_i));
	h_t = 0; h_p = NONE;
	h_sup = 1;
	h_max = term[pe_i];
	for (h_j : 0 .. N-1) {
		if
		:: h_j != pe_i && REACH(pe_i, h_j) ->
			lossy(h_got);
			if
			:: h_got ->
				peer_state_call(pe_i, h_j);
				if
				:: term[h_j] > term[pe_i] &&
				   (!rec[h_j] || (NAMED(h_j) != NONE && NAMED(h_j) != pe_i) ||
				    (VFOR(h_j) != NONE && VFOR(h_j) != pe_i)) -> h_dep = 1;
#ifdef FIX_DEPOSAL
					/* the newest term seen, and the primary that peer names */
					if
					:: term[h_j] > h_t ->
						h_t = term[h_j];
						h_p = (!rec[h_j] -> h_j : NAMED(h_j))
					:: else -> skip
					fi
#endif
				:: else -> skip
				fi;
				if
				:: term[h_j] > h_max -> h_max = term[h_j]
				:: else -> skip
				fi;
				if
				:: rec[h_j] && NAMED(h_j) == pe_i -> h_sup++
				:: else -> skip
				fi
			:: else -> skip
			fi
		:: else -> skip
		fi
	}
	if
	:: h_dep ->
		learns(pe_i);
		printf("MC n%d is deposed (it saw a newer term)\n", pe_i);
		fenced[pe_i] = 1;
#ifdef FIX_DEPOSAL
		/* candidate fix: when the newer term names its primary, the deposal
		 * goes on disk (standby.signal first) with that primary, and the
		 * rejoin knows where to go.  (A first attempt that also rejoined as a
		 * standby without an upstream when no primary is named is unsafe
		 * with adopt_term's carry-over: see model/README.md.) */
		if
		:: h_t > term[pe_i] && h_p != NONE ->
			vfor[pe_i] = NONE; vterm[pe_i] = 0;
			term[pe_i] = h_t; pname[pe_i] = h_p; saved(pe_i)
		:: else -> skip
		fi;
#endif
		h_ev = EV_DEPOSED
	:: else ->
		if
		:: h_max > term[pe_i] -> adopt_term(pe_i, h_max, pe_i)
		:: else -> skip
		fi;
		if
		:: h_sup >= MAJ -> h_ev = EV_MAJ_OK
		:: h_sup < MAJ && lease[pe_i] == 0 -> h_ev = EV_MAJ_LOST
		:: else -> h_ev = EV_LEASE_RUN
		fi
	fi
}

/* standby_event(): who is the primary, and did we hear from it? */
inline standby_event(se_i)
{
	h_new = NONE;
	for (h_j : 0 .. N-1) {
		h_ans[h_j] = 0;
		if
		:: h_j != se_i && REACH(se_i, h_j) ->
			lossy(h_got);
			h_ans[h_j] = h_got;
			if
			:: h_got && !rec[h_j] && ACKS(h_j) && (h_new == NONE || term[h_j] > term[h_new]) -> h_new = h_j
			:: else -> skip
			fi
		:: else -> skip
		fi
	}
	h_contact = 0;
	if
	:: h_new != NONE && term[h_new] >= term[se_i] ->
		h_prim = h_new; h_contact = 1;
		adopt_term(se_i, term[h_new], h_new);
		silence[se_i] = 0
	:: else ->
		h_prim = (pname[se_i] != NONE -> pname[se_i] : regp)
	fi;
	if
	:: h_prim != NONE && h_prim != se_i && h_prim != upst[se_i] && silence[se_i] < FT &&
	   (h_contact || pname[se_i] == h_prim) -> h_ev = EV_NEW_PRIMARY
	:: else ->
		if
		:: silence[se_i] < SEEN || h_contact -> h_ev = EV_SEEN
		:: !(silence[se_i] < SEEN || h_contact) && silence[se_i] < FT -> h_ev = EV_SILENT
		:: else -> h_ev = EV_DEAD
		fi
	fi
}

inline worker_round(wr_i)
{
	/* begin_round(): rk_state_set_identity(role) */
	roleprim[wr_i] = !rec[wr_i];
	/* rk_derive_event(): an old primary in recovery whose rejoin must be
	 * checked (CHECK_REJOIN: it follows once it streams, see stream());
	 * then a role the state does not imply */
	if
	:: rec[wr_i] && rjp[wr_i] -> h_ev = EV_NONE; wst[wr_i] = REJOINING
	:: !(rec[wr_i] && rjp[wr_i]) && ((wst[wr_i] == IDLE || wst[wr_i] == PROMOTING) ||
	   (wst[wr_i] == STANDBY) != rec[wr_i]) ->
		if
		:: rec[wr_i] -> h_ev = EV_IS_STANDBY
		:: !rec[wr_i] && ELECTED(wr_i) -> h_ev = EV_IS_PRIMARY
		:: else -> h_ev = EV_NOT_ELECTED
		fi
	:: !(rec[wr_i] && rjp[wr_i]) && !((wst[wr_i] == IDLE || wst[wr_i] == PROMOTING) ||
	   (wst[wr_i] == STANDBY) != rec[wr_i]) ->
		if
		:: rec[wr_i] && req[wr_i] != 0 ->
			/* a manual request is judged on this round's probes */
			standby_event(wr_i); h_ev = EV_MANUAL
		:: !rec[wr_i] && req[wr_i] != 0 -> req[wr_i] = 0; h_ev = EV_NONE   /* REFUSE_MANUAL */
		:: req[wr_i] == 0 && rec[wr_i] -> standby_event(wr_i)
		:: req[wr_i] == 0 && !rec[wr_i] -> primary_event(wr_i)
		fi
	fi;

	printf("MC n%d round: state %d event %d (term %d lease %d silence %d)\n", wr_i, wst[wr_i], h_ev, term[wr_i], lease[wr_i], silence[wr_i]);
	/* the rows of core/fsm.c */
	if
	:: h_ev == EV_IS_STANDBY ->
		wst[wr_i] = STANDBY                                  /* IDLE, PRIMARY, FENCED, REJOINING; PROMOTING: did not complete */
	:: h_ev == EV_IS_PRIMARY && wst[wr_i] == IDLE ->
		wst[wr_i] = PRIMARY                                  /* START_PRIMARY: the lease comes with a majority */
	:: h_ev == EV_IS_PRIMARY && wst[wr_i] != IDLE ->
		wst[wr_i] = PRIMARY; act_take_over(wr_i)                /* PROMOTING, FOLLOWING... --IS_PRIMARY--> TAKE_OVER */
	:: h_ev == EV_NOT_ELECTED ->
		wst[wr_i] = FENCED; fenced[wr_i] = 1                    /* FENCE_UNELECTED */
	:: h_ev == EV_MANUAL ->
		act_manual(wr_i)
	:: h_ev == EV_MAJ_OK && wst[wr_i] == PRIMARY ->
		lease[wr_i] = LEASE                                  /* RENEW_LEASE */
	:: h_ev == EV_MAJ_OK && wst[wr_i] == FENCED ->
		wst[wr_i] = PRIMARY;                                 /* UNFENCE */
		if
		:: !fenced[wr_i] -> lease[wr_i] = LEASE
		:: else -> skip
		fi
	:: h_ev == EV_MAJ_LOST && wst[wr_i] == PRIMARY ->
		wst[wr_i] = FENCED                                   /* FENCE: the lease ran out */
	:: h_ev == EV_DEPOSED ->
		wst[wr_i] = REJOINING; act_rejoin(wr_i)                 /* FENCE, follow-up DEPOSED: REJOIN */
	:: h_ev == EV_NEW_PRIMARY ->
		upst[wr_i] = h_prim                                  /* FOLLOW: re-point primary_conninfo */
	:: h_ev == EV_DEAD ->
		act_elect(wr_i)                                      /* ELECT, follow-up ELECTION_WON: PROMOTE */
	:: else -> skip                                       /* the ignore rows */
	fi;
	done[wr_i] = 1
}

/* ----------------------------------------------------------------- */
/* Start (worker/fence_start.c, core/shmem.c)                          */

/*
 * rk_fence_at_start(): a node whose state says it was the primary asks the
 * others, before it opens a connection.  `fullstart' is false for a crash-restart
 * of the postmaster's children, which skips it.
 */
inline start(s_i, s_fullstart)
{
	up[s_i] = 1;
	forget(s_i);
#ifdef HOLE_A
	term[s_i] = dterm[s_i]; pname[s_i] = dpname[s_i];
#endif
	rec[s_i] = sig[s_i];
	if
	:: s_fullstart && roleprim[s_i] && !(sig[s_i] && ELECTED(s_i)) ->
		h_new = NONE; h_sup = 1; h_p = NONE;
		if
		:: !ELECTED(s_i) && pname[s_i] != NONE && pname[s_i] != s_i -> h_p = pname[s_i]   /* knows it was replaced */
		:: else ->
			for (h_j : 0 .. N-1) {
				if
				:: h_j != s_i && REACH(s_i, h_j) ->
					lossy(h_got);
					if
					/* a node out of recovery counts only if it is not fenced (12551f2) */
					:: h_got && term[h_j] > term[s_i] &&
					   ((!rec[h_j] && !fenced[h_j]) || (NAMED(h_j) != NONE && NAMED(h_j) != s_i)) -> h_new = h_j
					:: h_got && !(term[h_j] > term[s_i] && ((!rec[h_j] && !fenced[h_j]) || (NAMED(h_j) != NONE && NAMED(h_j) != s_i))) &&
					   ELECTED(s_i) && rec[h_j] && term[h_j] == term[s_i] && NAMED(h_j) == s_i -> h_sup++
					:: else -> skip
					fi
				:: else -> skip
				fi
			}
		fi;
		if
		:: h_p == NONE && h_new == NONE && ELECTED(s_i) && h_sup >= MAJ -> skip   /* confirmed: starts as the primary */
#ifdef HOLE_B
		:: h_p == NONE && h_new == NONE && ELECTED(s_i) && h_sup < MAJ && term[s_i] < MAXTERM ->
			/* HOLE_B: takes over on its own vote */
			term[s_i]++; vterm[s_i] = term[s_i]; vfor[s_i] = s_i; won[s_i] = term[s_i];
			printf("MC n%d takes over term %d on its own vote (HOLE_B)\n", s_i, won[s_i]);
			if
			:: !(owner[won[s_i]] == NONE || owner[won[s_i]] == s_i) -> assert(P2_at_most_one_primary_per_term)
			:: else -> skip
			fi;
			owner[won[s_i]] = s_i;
			saved(s_i);
			lease[s_i] = LEASE
#endif
		:: else ->
			/* start_as_standby() */
			sig[s_i] = 1; rec[s_i] = 1;
			if
			:: h_p != NONE -> upst[s_i] = h_p; rjp[s_i] = 1
			:: h_p == NONE && h_new != NONE -> rjp[s_i] = 1;
				h_p = (NAMED(h_new) != NONE && rec[h_new] -> NAMED(h_new) : h_new);
				upst[s_i] = h_p; term[s_i] = term[h_new]; pname[s_i] = h_p
			:: else -> pname[s_i] = NONE; upst[s_i] = NONE
			fi;
			roleprim[s_i] = 0;
			saved(s_i)
		fi
	:: else -> skip
	fi;
	/* rk_shmem_startup(): a primary of a term it did not win starts fenced */
	if
	:: roleprim[s_i] && !rec[s_i] && !ELECTED(s_i) -> fenced[s_i] = 1
	:: else -> skip
	fi
}

/* ----------------------------------------------------------------- */
/* Properties checked at every state: at most one node can acknowledge a
 * commit, and a node that can holds every acknowledged commit. */

#define ONE_ACKER   (!(CAN_ACK(0) && CAN_ACK(1)) && !(CAN_ACK(0) && CAN_ACK(2)) && !(CAN_ACK(1) && CAN_ACK(2)))
#define ACKER_HAS_ALL ((!CAN_ACK(0) || HASACKED(0)) && (!CAN_ACK(1) || HASACKED(1)) && (!CAN_ACK(2) || HASACKED(2)))

active proctype monitor()
{
	if
	:: atomic { !ONE_ACKER -> assert(P1_at_most_one_node_can_acknowledge) }
	:: atomic { !ACKER_HAS_ALL -> assert(P3_acknowledged_commit_in_every_later_primary) }
	fi
}

/* A commit is acknowledged by node i: checks at that instant. */
inline acknowledge(a_i)
{
	/* at most one node acknowledges at any instant */
	printf("MC n%d acknowledges commit %d to its client (local %d)\n", a_i, pend[a_i], plocal[a_i]);
	for (h_j : 0 .. N-1) {
		if
		:: h_j != a_i && CAN_ACK(h_j) -> assert(P1_at_most_one_node_can_acknowledge)
		:: else -> skip
		fi
	}
	/* a superseded primary never acknowledges again: no term after the one
	 * this node won has a winner */
	for (h_j : 1 .. MAXTERM) {
		if
		:: h_j > won[a_i] && owner[h_j] != NONE -> assert(P4_deposed_primary_never_acknowledges_again)
		:: else -> skip
		fi
	}
	if
	:: !plocal[a_i] -> acked = acked | (1 << pend[a_i])
	:: else -> skip
	fi
}

/* ----------------------------------------------------------------- */

/* ----------------------------------------------------------------- */
/* The steps, one node each                                           */

/* a worker's round */
#define G_ROUND(n)   (RUNNING(n) && !kitless[n] && !promo[n])

/* pg_promote() finishes: out of recovery on a new timeline */
#define G_PROMOTED(n) (RUNNING(n) && promo[n] && rec[n] && lsn[n] < L)
inline promoted(n)
{
	/* P3 is checked by the monitor, once this node can acknowledge: a
	 * winner whose pg_promote() finishes after a newer term was won leaves
	 * recovery without the newer commits, but never acknowledges (its
	 * lease from the votes ran out before that term could be won) */
	printf("MC n%d pg_promote() done\n", n);
	rec[n] = 0; sig[n] = 0; promo[n] = 0;
	maxtli++;
	append(n, maxtli)
}

/* a client commits on a primary; the guard looks at PRE_COMMIT */
#define G_COMMIT(n)  (RUNNING(n) && !rec[n] && pend[n] == 0 && commits < MAXCOMMITS && lsn[n] < L && \
                      (kitless[n] || ACKS(n)))
inline commit(n)
{
	commits++;
	append(n, TLI(n));
	pend[n] = nextid;
	released[n] = 0;
	if
	:: plocal[n] = 0
	:: plocal[n] = 1
	fi;
	printf("MC n%d writes commit %d at lsn %d (local %d)\n", n, nextid, lsn[n], plocal[n])
}

/* a WAL receiver: copy from the upstream, rewound first if the histories
 * part; rk_replication_gate lets only the handover's target stream from a
 * fenced primary */
#define G_STREAM(n)  (RUNNING(n) && rec[n] && upst[n] != NONE && upst[n] != n && RUNNING(upst[n]) && \
                      LINK(n, upst[n]) && !(fenced[upst[n]] && !rec[upst[n]] && ftarget[upst[n]] != n))
inline stream(n)
{
	is_prefix(n, upst[n]);
	if
	:: pres && lsn[n] < lsn[upst[n]] -> copy_from(n, upst[n]);
		if
		:: !rec[upst[n]] -> rjp[n] = 0
		:: else -> skip
		fi;
		printf("MC n%d streams from n%d up to lsn %d\n", n, upst[n], lsn[n])
	:: !pres && !rec[upst[n]] -> rewind_to(n, upst[n]); copy_from(n, upst[n]); forget(n); rjp[n] = 0;
		printf("MC n%d rewound to n%d's WAL (lsn %d) and restarted\n", n, upst[n], lsn[n])
	:: pres && lsn[n] == lsn[upst[n]] && !rec[upst[n]] -> rjp[n] = 0
	:: else -> skip
	fi
}

/* the synchronous standby's flush releases the waiting commit (ANY 1) */
#define SYNCACK(n, s) (s != n && RUNNING(s) && rec[s] && upst[s] == n && LINK(n, s) && \
                       (walset[s] & (1 << pend[n])) != 0 && !(fenced[n] && ftarget[n] != s))
#define G_RELEASE(n) (RUNNING(n) && !rec[n] && pend[n] != 0 && !plocal[n] && !released[n] && \
                      (SYNCACK(n, 0) || SYNCACK(n, 1) || SYNCACK(n, 2)))

/* the backend wakes: the guard's second look, then the client is told */
#define G_FINISH(n)  (RUNNING(n) && pend[n] != 0 && (plocal[n] || released[n]))
inline finish(n)
{
#ifndef NO_SECOND_LOOK
	if
	:: kitless[n] || ACKS(n) -> acknowledge(n)
	:: else -> printf("MC n%d closes the connection: commit %d not acknowledged\n", n, pend[n])
	fi;
#else
	acknowledge(n);
#endif
	pend[n] = 0; plocal[n] = 0; released[n] = 0
}

/* faults */
#define FAULTS_LEFT  (!calm && faults < MAXF)
inline crash(n)
{
	faults++; up[n] = 0; forget(n); rec[n] = 0;
	printf("MC FAULT n%d crashes\n", n)
}
inline restart(n)
{
	if
	:: start(n, 1); printf("MC n%d starts (fence at start): in recovery %d, fenced %d\n", n, rec[n], fenced[n])
	:: start(n, 0); printf("MC n%d crash-restarts: in recovery %d, fenced %d\n", n, rec[n], fenced[n])
#ifdef KITLESS
	:: learnt[n] ->
		/* an operator restarts a deposed primary without the library:
		 * no worker, no guard */
		up[n] = 1; forget(n);
#ifdef HOLE_A
		term[n] = dterm[n]; pname[n] = dpname[n];
#endif
		rec[n] = sig[n]; kitless[n] = 1;
		printf("MC FAULT n%d restarted without the kit: in recovery %d\n", n, rec[n])
#endif
	fi
}
#define G_OPPROMOTE(n) (FAULTS_LEFT && RUNNING(n) && !kitless[n] && rec[n] && !promo[n] && lsn[n] < L)
inline op_promote(n)
{
	faults++;
	printf("MC FAULT operator runs pg_promote() on n%d\n", n);
	rec[n] = 0; sig[n] = 0;
	maxtli++;
	append(n, maxtli)
}
#define G_REQUEST(n) (!calm && ops < MAXOPS && RUNNING(n) && !kitless[n] && rec[n] && req[n] == 0)
inline request(n)
{
	ops++;
	if
	:: req[n] = M_MANUAL
	:: req[n] = M_FORCE
	fi;
	printf("MC operator asks n%d for a failover (mode %d)\n", n, req[n])
}

#define STEPS(n) \
	:: atomic { G_ROUND(n) -> worker_round(n); clear() } \
	:: atomic { G_PROMOTED(n) -> promoted(n) } \
	:: atomic { G_COMMIT(n) -> commit(n) } \
	:: atomic { G_STREAM(n) -> stream(n); clear() } \
	:: atomic { G_RELEASE(n) -> released[n] = 1; printf("MC a standby's flush releases n%d's commit %d\n", n, pend[n]) } \
	:: atomic { G_FINISH(n) -> finish(n); clear() } \
	:: atomic { FAULTS_LEFT && up[n] -> crash(n) } \
	:: atomic { !calm && !up[n] -> restart(n); clear() } \
	:: atomic { FAULTS_LEFT && RUNNING(n) -> faults++; paused[n] = 1; printf("MC FAULT n%d paused\n", n) } \
	:: atomic { up[n] && paused[n] -> paused[n] = 0; printf("MC n%d resumes\n", n) } \
	:: atomic { G_OPPROMOTE(n) -> op_promote(n) } \
	:: atomic { G_REQUEST(n) -> request(n) }

#define LINKSTEPS(k) \
	:: atomic { FAULTS_LEFT && link[k] -> faults++; link[k] = 0; printf("MC FAULT link %d cut\n", k) } \
	:: atomic { !link[k] -> link[k] = 1; printf("MC link %d heals\n", k) }

/* a tick of the clock: every running worker has done its round since the
 * last one (probe_interval = 1 tick) and a pg_promote() under way has
 * finished; a worker that is slower than that is a paused node (a fault) */
#define SETTLED(n) (!RUNNING(n) || kitless[n] || (done[n] && !promo[n]))
inline tick()
{
	printf("MC tick\n");
	for (h_j : 0 .. N-1) {
		if
		:: lease[h_j] > 0 ->
#ifdef HOLE_D
			if
			:: lease[h_j]--
			:: !calm -> skip     /* the lease's clock lags */
			fi
#else
			lease[h_j]--
#endif
		:: else -> skip
		fi;
		if
		:: silence[h_j] < FT -> silence[h_j]++
		:: else -> skip
		fi;
		if
		:: svote[h_j] < FT -> svote[h_j]++
		:: else -> skip
		fi;
		done[h_j] = 0
	}
	/* with the faults stopped and a majority up and connected, a primary
	 * exists within KLIVE ticks (while terms are left) */
	if
	:: calm ->
		if
		:: CAN_ACK(0) || CAN_ACK(1) || CAN_ACK(2) -> calm_ticks = 0
		:: else -> calm_ticks++
		fi;
		if
		:: !(calm_ticks <= KLIVE || term[0] >= MAXTERM || term[1] >= MAXTERM || term[2] >= MAXTERM) ->
			assert(P5_primary_within_KLIVE_ticks_of_calm)
		:: else -> skip
		fi
	:: else -> skip
	fi
}

active proctype world()
{
	byte i;

	atomic {
		link[0] = 1; link[1] = 1; link[2] = 1;
		maxtli = 1;
		regp = 0;
		for (i : 0 .. N-1) {
			up[i] = 1; vfor[i] = NONE; pname[i] = 0; term[i] = 1;
			ftarget[i] = NONE;
			svote[i] = FT;
			if
			:: i == 0 -> won[i] = 1; roleprim[i] = 1; rec[i] = 0; sig[i] = 0; upst[i] = NONE; wst[i] = PRIMARY; lease[i] = LEASE
			:: else -> rec[i] = 1; sig[i] = 1; upst[i] = 0; wst[i] = STANDBY
			fi;
#ifdef HOLE_A
			dterm[i] = term[i]; dpname[i] = pname[i];
#endif
		}
		for (i : 0 .. MAXTERM) { owner[i] = NONE }
		owner[1] = 0;
		i = 0
	}

	do
	STEPS(0)
	STEPS(1)
	STEPS(2)
	LINKSTEPS(0)
	LINKSTEPS(1)
	LINKSTEPS(2)
	:: atomic { SETTLED(0) && SETTLED(1) && SETTLED(2) -> tick(); clear() }
	/* node 0 restored from a copy of its data directory taken while it was
	 * the primary of term 1 (its state file and signal files; see README) */
	:: atomic {
		FAULTS_LEFT && !up[0] && (term[0] > 1 || won[0] > 1) ->
		faults++;
		printf("MC FAULT n0 restored from an old copy\n");
		term[0] = 1; vterm[0] = 0; vfor[0] = NONE; won[0] = 1; pname[0] = 0;
		roleprim[0] = 1; sig[0] = 0; upst[0] = NONE;
#ifdef HOLE_A
		dterm[0] = 1; dpname[0] = 0;
#endif
		skip
	   }
#ifdef LIVE
	/* the faults stop: every link heals, every node resumes; a majority
	 * of the nodes runs with the kit (LIVE_ALL: every node) */
	:: atomic {
#ifdef LIVE_ALL
		!calm && up[0] && up[1] && up[2] && !kitless[0] && !kitless[1] && !kitless[2] ->
#else
		!calm && (up[0] && !kitless[0]) + (up[1] && !kitless[1]) + (up[2] && !kitless[2]) >= MAJ ->
#endif
		calm = 1;
		printf("MC the faults stop\n");
		link[0] = 1; link[1] = 1; link[2] = 1;
		paused[0] = 0; paused[1] = 0; paused[2] = 0;
		done[0] = 0; done[1] = 0; done[2] = 0;
		calm_ticks = 0
	   }
#endif
	od
}
