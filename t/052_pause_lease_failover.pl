# What a maintenance pause does not turn off.
#
# The lease: pgmaster, paused, is cut off from both standbys.  It stops
# acknowledging commits by itself (its lease lapses as it would unpaused),
# and the standbys elect nobody.  Healed, the same primary in the same term
# takes writes again.
#
# An operator's failover: pgmaster dies while paused.  Nobody is promoted
# automatically; rk_failover() on a standby promotes the best one at once,
# with every acknowledged commit, and the cluster stays paused: the pause is
# in the registry the new primary inherited, and only rk_resume() ends it.
# The other standby and the old primary, which need no rewind, follow it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($pgmaster, $pgslave, $pgasync) = build_cluster();
my @all = ($pgmaster, $pgslave, $pgasync);
$pgmaster->safe_psql('postgres', 'CREATE TABLE acked (id int PRIMARY KEY)');
$pgmaster->safe_psql('postgres', 'CREATE TABLE local_writes (id serial PRIMARY KEY, at timestamptz)');
$_->poll_query_until('postgres', "SELECT to_regclass('local_writes') IS NOT NULL") for ($pgslave, $pgasync);

like($pgmaster->safe_psql('postgres', "SELECT rk_pause('lease test')"), qr/^paused/, 'paused');
for my $n (@all)
{
	ok(wait_until(sub { slurp_file($n->logfile) =~ /the cluster is paused \(pause \d+ since .*: lease test\)/ }, 60),
		$n->name . ' knows of the pause');
}
my $term = $pgmaster->safe_psql('postgres', 'SELECT term FROM rk_local_node()');

# Cut off while paused: the lease still ends its commits.
my ($cut_at, $err, $last_local) = cut_off_committing($pgmaster, $pgslave, $pgasync);
like($err, qr/has not heard from a majority|is not acknowledged: this primary lost its lease/,
	'paused and cut off, the primary stops acknowledging by itself');
my $held = "SELECT pg_is_in_recovery() AND remark LIKE '%cluster paused%no automatic failover%' "
  . "AND (regexp_match(remark, 'primary lost (\\d+) ms ago'))[1]::bigint > 9000 FROM rk_status() WHERE is_self";
ok(poll_ok($_, $held), $_->name . ': primary lost for over 9 s, no election while paused') for ($pgslave, $pgasync);
my ($ok, $out) = psql_ok($pgmaster, 'SET synchronous_commit = local; INSERT INTO local_writes (at) VALUES (now())');
ok(!$ok, 'still cut off, it still refuses commits');

# Healed: the same primary, in the same term, takes writes again.
partition($_, undef) for @all;
ok(defined wait_until(sub { (psql_ok($pgmaster, 'INSERT INTO acked SELECT g FROM generate_series(1, 100) g'))[0] }, 90),
	'healed, the primary takes writes again');
is($pgmaster->safe_psql('postgres', 'SELECT term FROM rk_local_node()'), $term, 'in the same term');
is(scalar(grep { (psql_ok($_, 'SELECT pg_is_in_recovery()'))[1] eq 't' } $pgslave, $pgasync), 2,
	'both others are still standbys');
ok(wait_follows($_, $pgmaster, 90), $_->name . ' streams from pgmaster again') for ($pgslave, $pgasync);

# The primary dies while paused: nobody takes over by themselves...
$_->poll_query_until('postgres', 'SELECT count(*) = 100 FROM acked') or die for ($pgslave, $pgasync);
diverge_and_kill($pgmaster, undef, $pgslave, $pgasync);
ok(poll_ok($_, $held), $_->name . ': no automatic failover while paused') for ($pgslave, $pgasync);

# ...but an operator can.
my $result = $pgasync->safe_psql('postgres', 'SELECT rk_failover()');
note("rk_failover(): $result");
my $new = wait_for_primary(60, $pgslave, $pgasync);
ok(defined $new, 'rk_failover() while paused promotes a standby') or BAIL_OUT('no primary');
like($result, qr/\Q@{[ $new->name ]}\E/, 'the node it names');
is($new->safe_psql('postgres', 'SELECT count(*) FROM acked'), '100', 'with every acknowledged commit');
ok(wait_until(sub { (psql_ok($new, 'INSERT INTO acked VALUES (101)'))[0] }, 60), 'the new primary takes writes');
is($new->safe_psql('postgres', 'SELECT paused_at IS NOT NULL FROM rk_cluster'), 't',
	'the cluster is still paused in its registry');
ok(poll_ok($new, "SELECT remark LIKE '%paused%' FROM rk_status() WHERE is_self"), 'and rk_status() says so');
my ($other) = grep { $_ != $new } ($pgslave, $pgasync);
ok(wait_follows($other, $new, 120), $other->name . ' follows ' . $new->name . ' (re-pointing is not held by a pause)');

# The old primary comes back.  Its WAL has nothing the others lack, so it
# needs no rewind: it starts as a standby and follows the new primary,
# which a pause does not hold (t/048 has one that needs a rewind).
$pgmaster->start;
($ok) = psql_ok($pgmaster, 'INSERT INTO acked VALUES (1000)');
ok(!$ok, 'the old primary, back, takes no writes');
ok(wait_follows($pgmaster, $new, 120), 'and follows ' . $new->name . ' as a standby');
is($pgmaster->safe_psql('postgres', 'SELECT count(*) FROM acked'), '101', 'with every commit');
like($new->safe_psql('postgres', 'SELECT rk_resume()'), qr/^resumed/, 'rk_resume() ends the pause');
ok(poll_ok($_, 'SELECT paused_at IS NULL FROM rk_cluster'), $_->name . ': the registry is no longer paused')
  for ($pgmaster, $other);

done_testing();
