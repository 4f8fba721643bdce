# Failover priorities (rk_set_node(name, priority => n)).
#
# Three nodes: pgslave, the synchronous standby, has priority 0 and holds
# 20 acknowledged commits that pgasyncslave lacks.  The primary dies:
# pgslave is not promoted; pgasyncslave takes the missing WAL from it at
# once (no second failover_timeout of waiting, as for a standby that merely
# fails to run) and is promoted with every acknowledged commit.
#
# Five nodes under ANY 2, every standby with the same WAL: the tie goes to
# the highest priority (standby3, 500) over the synchronous order and the
# names, never to standby1 (0); the others follow it, nothing acknowledged
# is lost.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;

# Three nodes.
my ($primary, $pgslave, $pgasync) = build_cluster();
like($primary->safe_psql('postgres', "SELECT rk_set_node('pgslave', priority => 0)"),
	qr/never promoted automatically/, 'pgslave gets priority 0');
ok(poll_ok($pgasync, "SELECT priority = 0 FROM rk_nodes WHERE node_name = 'pgslave'"), 'replicated');
$primary->safe_psql('postgres', 'CREATE TABLE acked (id int PRIMARY KEY)');
$primary->safe_psql('postgres', 'INSERT INTO acked VALUES (0)');
$_->poll_query_until('postgres', 'SELECT count(*) = 1 FROM acked') or die for ($pgslave, $pgasync);

partition($pgasync, 'pgmaster');
partition($primary, 'pgasyncslave');
ok(poll_ok($primary, "SELECT count(*) = 0 FROM pg_stat_replication WHERE application_name = 'pgasyncslave'"),
	'pgasyncslave no longer streams from pgmaster');
$primary->safe_psql('postgres', "INSERT INTO acked VALUES ($_)") for 1 .. 20;
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(poll_ok($pgslave, "SELECT pg_last_wal_receive_lsn() >= '$lsn'"), 'pgslave has the 20 acknowledged commits');

$primary->stop('immediate');
partition($pgasync, undef);
my $new = wait_for_primary(90, $pgslave, $pgasync);
is($new ? $new->name : 'none', 'pgasyncslave', 'pgasyncslave is promoted, not pgslave (priority 0)');
is($pgasync->safe_psql('postgres', 'SELECT count(*) FROM acked'), '21', 'with every acknowledged commit');
my $log = slurp_file($pgasync->logfile);
like($log, qr/pgslave has the most WAL but priority 0; streaming from it before running in its place/,
	'it took the WAL from pgslave first, without waiting for pgslave to run');
is($pgslave->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'pgslave stayed a standby');
ok(wait_follows($pgslave, $pgasync, 90), 'pgslave follows the new primary');
$_->stop for ($pgslave, $pgasync);

# Five nodes.
my $p5 = new_kit_node('pgmaster5');
start_setup_primary($p5);
$p5->safe_psql('postgres', "SET log_statement = none; SELECT rk_create_replicator('replicator', '$REPL_PASSWORD')");
$p5->safe_psql('postgres', "SELECT rk_allow_replication('127.0.0.1/32')");
my @standbys = map { clone_standby($p5, "standby$_") } 1 .. 4;
my @all = ($p5, @standbys);
$p5->safe_psql('postgres', "SELECT rk_set_sync('ANY', 2)");
wait_for_sync_state($p5, map { ($_->name => 'quorum') } @standbys);
$p5->safe_psql('postgres', "SELECT rk_set_node('standby1', priority => 0)");
$p5->safe_psql('postgres', "SELECT rk_set_node('standby3', priority => 500)");
ok(poll_ok($_, "SELECT count(*) = 2 FROM rk_nodes WHERE priority <> 100"), $_->name . ' has the priorities')
  for @standbys;

$p5->safe_psql('postgres', 'CREATE TABLE writes (id int, at timestamptz)');
my $w = start_writer(write_connstr(@all), $tmp, 'writes');
ok(poll_ok($p5, 'SELECT count(*) > 50 FROM writes'), 'the client commits');
my @acked = stop_writer($w);
# Every standby holds the same WAL when the primary dies.
diverge_and_kill($p5, 'SELECT 1', @standbys);
$new = wait_for_primary(120, @standbys);
is($new ? $new->name : 'none', 'standby3', 'equal WAL: the highest priority wins');
my @missing = $new ? acked_missing($new, 'writes', @acked) : ('all');
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none lost') or diag("missing: @missing");
for my $n (grep { $_ != $new } @standbys)
{
	ok(wait_follows($n, $new, 120), $n->name . ' follows ' . $new->name);
}
is(scalar(grep { (psql_ok($_, 'SELECT pg_is_in_recovery()'))[1] eq 'f' } @standbys), 1, 'one primary');

done_testing();
