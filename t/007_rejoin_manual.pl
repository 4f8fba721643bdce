# With replication_kit.auto_rejoin off, an old primary that comes back stays
# fenced (read-only, not streaming) until the documented call, rk_rejoin().
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster('replication_kit.auto_rejoin' => 'off');
my @all = ($primary, $pgslave, $pgasync);
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$primary->safe_psql('postgres', 'INSERT INTO writes VALUES (1, now())');
$pgslave->poll_query_until('postgres', 'SELECT count(*) = 1 FROM writes') or die;

# rk_rejoin() on a healthy primary or a streaming standby: nothing to rejoin.
my ($ok, $out, $err) = psql_ok($primary, 'SELECT rk_rejoin()');
like($err, qr/this node is the primary and not fenced/, 'rk_rejoin() refused on the healthy primary');
($ok, $out, $err) = psql_ok($pgslave, 'SELECT rk_rejoin()');
like($err, qr/this node is already a standby/, 'rk_rejoin() refused on a streaming standby');

# SIGSTOP the primary; after the failover, SIGCONT: it stays fenced.
my @frozen = freeze_node($primary);
my $new = wait_for_primary(30, $pgslave, $pgasync) or die 'no failover';
thaw_node(@frozen);
$primary->poll_query_until('postgres',
	"SELECT remark LIKE '%auto_rejoin is off: run SELECT rk_rejoin()%' FROM rk_status() WHERE is_self")
  or die 'the old primary never said it waits for rk_rejoin()';
pass('the fenced old primary says it waits for rk_rejoin()');
ok(!defined wait_until(sub {
	my ($ok, $out) = psql_ok($primary, 'SELECT pg_is_in_recovery()');
	$ok && $out eq 't' }, 8), 'it stays where it is (watched for 8 s)');
($ok, $out, $err) = psql_ok($primary, 'SET synchronous_commit = local; INSERT INTO writes VALUES (2, now())');
ok(!$ok, 'and accepts no write');
is($primary->safe_psql('postgres', 'SHOW default_transaction_read_only'), 'on',
	'new sessions see it read-only');

# The documented call.
like($primary->safe_psql('postgres', 'SELECT rk_rejoin()'),
	qr/rejoining: this node will shut down, rewind and restart as a standby of/, 'rk_rejoin()');
wait_follows($primary, $new)
  or die 'the old primary does not stream from the new one';
pass('after rk_rejoin() the old primary streams from the new primary');
$primary->_update_pid(1);
$new->poll_query_until('postgres', "SELECT count(*) = 2 FROM pg_stat_replication WHERE state = 'streaming'")
  or die;
pass('one primary, two streaming standbys');

done_testing();
