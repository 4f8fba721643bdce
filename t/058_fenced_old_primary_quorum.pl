# An old primary that is up but fenced, and not a standby, must not keep the
# others from electing a primary.
#
# The fault soak (seed 4) ended with no primary at all: node2 won a term and
# was killed; it came back as a standby (no majority confirmed it at
# start); node1, the primary before it, was up, fenced and out of recovery,
# waiting for a primary to rejoin.  node2 and node3 each needed to hear both
# other members of the synchronous list (n - k + 1 = 2 of 2 for FIRST 1)
# and counted only standbys: node1 never counted, nobody ran an election,
# and node1 never found a primary to rejoin.  A fenced node on a timeline
# older than the primary's never streamed the primary's WAL and holds none
# of its acknowledged commits: it counts as heard.
#
# Here the old primary stays out of recovery because auto_rejoin is off
# (in the soak it waited to learn the new primary's name): the same
# deadlock, without depending on timing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster('replication_kit.auto_rejoin' => 'off');

# pgmaster hangs, one of the standbys wins a term, pgmaster wakes up fenced
# and stays out of recovery (auto_rejoin is off).
my @frozen = freeze_node($primary);
my $new = wait_for_primary(120, $pgslave, $pgasync) or BAIL_OUT('no failover');
my $other = $new == $pgslave ? $pgasync : $pgslave;
thaw_node(@frozen);
ok( $primary->poll_query_until('postgres',
		"SELECT remark LIKE '%auto_rejoin is off: run SELECT rk_rejoin()%' FROM rk_status() WHERE is_self"),
	'pgmaster, thawed, is fenced and waits for rk_rejoin()');
ok(wait_follows($other, $new, 120), $other->name . ' follows ' . $new->name);
my $new_tli = $new->safe_psql('postgres', 'SELECT timeline FROM rk_local_node()');

# The new primary dies and comes back while the standby left refuses its
# calls (and pgmaster, no standby, confirms nobody): no majority confirms
# it at start, so it starts as a standby.
partition($other, $new->name);
kill9($new);
$new->start;
ok( defined wait_until(sub { (psql_ok($new, 'SELECT pg_is_in_recovery()'))[1] eq 't' }, 60),
	$new->name . ' came back as a standby');

# The cut heals.  pgmaster is up, fenced and out of recovery; the two
# standbys must still elect a primary between them.
partition($other, undef);
my $winner = wait_for_kit_primary(120, $new, $other);
ok(defined $winner,
	'a standby wins a new term although pgmaster is up, fenced and no standby');
SKIP:
{
	skip 'no new primary', 3 unless $winner;
	cmp_ok($winner->safe_psql('postgres', 'SELECT timeline FROM rk_local_node()'),
		'>', $new_tli, 'on a newer timeline');
	my $loser = $winner == $new ? $other : $new;
	ok(wait_follows($loser, $winner, 180), $loser->name . ' follows it');
	psql_ok($primary, 'SELECT rk_rejoin()');
	ok(wait_follows($primary, $winner, 180), 'and pgmaster, after rk_rejoin(), too');
}

done_testing();
