# The primary restarts while one standby is down and the other answers
# nothing (frozen): its fence at start is confirmed by 1 of 3 nodes, so it
# comes up as a standby and waits for an election.  Then the frozen standby
# resumes.  The two nodes up are a majority and must elect a primary
# between them, with every acknowledged commit.  Before, each left the node
# it took for the primary (the restarted one, now a standby) out of its
# count, reported "no majority: 1 of 3 nodes reachable", and no election
# ever began (the soak's finding G).  pgasyncslave is asynchronous here:
# with a synchronous standby down the kit rightly waits, since that one may
# hold a commit nobody else has (README, "Fault soak", G).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster_async();
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY)');
$primary->safe_psql('postgres', 'INSERT INTO writes SELECT generate_series(1, 100)');
$pgslave->poll_query_until('postgres', 'SELECT count(*) = 100 FROM writes') or die;

$pgasync->stop('immediate');
my @frozen = freeze_node($pgslave);
$primary->stop('immediate');
my $log_offset = -s $primary->logfile;
$primary->start;
like(substr(slurp_file($primary->logfile), $log_offset), qr/fence at start: 1 of \d nodes confirm pgmaster .*starts as a standby/,
	'the fence at start hears only pgmaster itself');
ok(poll_ok($primary, 'SELECT pg_is_in_recovery()', 60), 'pgmaster comes up as a standby');
thaw_node(@frozen);

my $new = wait_for_primary(120, $primary, $pgslave);
ok(defined $new, 'pgmaster and pgslave elect a primary between them ('
	  . ($new ? $new->name : 'none') . ')')
  or diag(join("\n", map { $_->name . ': ' . $_->safe_psql('postgres', 'SELECT remark FROM rk_status() WHERE is_self') }
	  ($primary, $pgslave)));
SKIP:
{
	skip 'no primary', 3 unless $new;
	my $other = $new == $primary ? $pgslave : $primary;
	is($new->safe_psql('postgres', 'SELECT count(*) FROM writes'), '100', 'every acknowledged commit is there');
	ok(wait_follows($other, $new, 120), $other->name . ' follows it');
	$pgasync->start;
	ok(wait_follows($pgasync, $new, 120), 'pgasyncslave, started again, follows it too');
}

done_testing();
