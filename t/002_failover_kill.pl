# Automatic failover after kill -9 of the primary, under a committing client
# that finds the primary through a libpq multi-host string.  Also: a dead
# standby causes no failover, and of two standbys the more advanced wins.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my @all = ($primary, $pgslave, $pgasync);
my $tmp = PostgreSQL::Test::Utils::tempdir;
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$_->poll_query_until('postgres', "SELECT to_regclass('writes') IS NOT NULL") for ($pgslave, $pgasync);

# --- A dead standby is no reason to fail over; writes go on through the other.
$pgasync->stop('immediate');
$primary->safe_psql('postgres', 'INSERT INTO writes VALUES (-1, now())');
pass('with pgasyncslave dead, a synchronous write commits through pgslave');
$pgslave->stop('immediate');
$pgasync->start;
wait_for_sync_state($primary, pgasyncslave => 'sync');
$primary->safe_psql('postgres', 'INSERT INTO writes VALUES (-2, now())');
pass('with pgslave dead, a synchronous write commits through pgasyncslave');
ok(!defined wait_until(sub { $pgasync->safe_psql('postgres', 'SELECT pg_is_in_recovery()') eq 'f' }, 8),
	'no failover while only a standby is down (watched for more than failover_timeout)');
is($primary->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'pgmaster is still the primary');
$pgslave->start;
wait_for_sync_state($primary, pgslave => 'sync', pgasyncslave => 'potential');

# --- kill -9 the primary under a committing client.
my $w = start_writer(write_connstr(@all), $tmp);
$primary->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;
my $lsn_slave = $pgslave->safe_psql('postgres', 'SELECT pg_last_wal_receive_lsn()');
my $killed_at = time;
kill9($primary);
my $new = wait_for_primary(30, $pgslave, $pgasync);
my $promoted_after = time - $killed_at;
ok(defined $new, 'a standby was promoted after kill -9 of the primary');
diag(sprintf('new primary %s answers as primary %.1f s after the kill', $new->name, $promoted_after));
ok($promoted_after < 3 + 5, 'within failover_timeout + a few seconds');

# The client's writes resume on the new primary through the same string.
my $before = $new->safe_psql('postgres', 'SELECT count(*) FROM writes');
$new->poll_query_until('postgres', "SELECT count(*) > $before + 10 FROM writes")
  or die 'writes did not resume on the new primary';
my @acked = stop_writer($w);
my @missing = acked_missing($new, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none missing on the new primary')
  or diag("missing: @missing");

# It was the standby with the most WAL, and the other one follows it.
my $other = $new == $pgslave ? $pgasync : $pgslave;
cmp_ok($new->safe_psql('postgres', "SELECT pg_current_wal_lsn() >= '$lsn_slave'"), 'eq', 't',
	'the new primary has at least the WAL pgslave had received');
wait_follows($other, $new)
  or die 'the other standby does not stream from the new primary';
pass($other->name . ' streams from the new primary ' . $new->name);
is($new->safe_psql('postgres', 'SHOW synchronous_standby_names'),
	'FIRST 1 (pgmaster, ' . $other->name . ')',
	'the new primary applies the stored FIRST 1 policy to the remaining nodes, old primary first');
wait_for_sync_state($new, $other->name => 'sync');
is($new->safe_psql('postgres', "SELECT node_name || ':' || role FROM rk_nodes WHERE role = 'primary'"),
	$new->name . ':primary', 'the registry names the new primary');
is($new->safe_psql('postgres', 'SELECT term FROM rk_cluster'), '2', 'in term 2');
like($new->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY event_id) FROM rk_events WHERE term = 2"),
	qr/election.*votes.*promote.*take_over/, 'the election is in rk_events');
is(status_of($other), status_of($new), 'rk_status agrees on the two survivors');

# --- Of two standbys, the more advanced one wins.  Bring pgmaster back by
# hand as a standby of the new primary, then hold one standby back.
reclone($new, $primary);
$new->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_stat_replication WHERE state = 'streaming'") or die;
my ($ahead, $behind) = ($primary, $other);
wait_for_sync_state($new, $ahead->name => 'sync');
# Freeze the WAL receiver of one standby: it stays connected but receives nothing.
my $walrcv = $behind->safe_psql('postgres', 'SELECT pid FROM pg_stat_wal_receiver');
kill 'STOP', $walrcv;
$new->safe_psql('postgres', 'INSERT INTO writes SELECT g, now() FROM generate_series(100001, 100100) g');
my $ahead_lsn = $ahead->safe_psql('postgres', 'SELECT pg_last_wal_receive_lsn()');
cmp_ok($behind->safe_psql('postgres', "SELECT pg_last_wal_receive_lsn() < '$ahead_lsn'"), 'eq', 't',
	$behind->name . ' is behind ' . $ahead->name);
kill9($new);
my $winner = wait_for_primary(30, $ahead, $behind);
kill 'CONT', $walrcv;
is($winner ? $winner->name : 'none', $ahead->name, 'the more advanced standby won the election');
is($winner->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id > 100000'), '100',
	'with every acknowledged commit');
wait_follows($behind, $winner)
  or die 'the standby that was behind does not follow the winner';
pass('the standby that was behind follows the winner again');
# The take-over writes the term into the registry just after the promotion:
# term 3, or a later one if a first election was refused (a voter whose
# WAL receiver this test froze still counts as receiving WAL).
ok(poll_ok($winner, 'SELECT c.term >= 3 AND c.term = l.term FROM rk_cluster c, rk_local_node() l'),
	'in the term it won, 3 or later');

done_testing();
