# What force may not override.
# 1. A primary alive but unreachable from the forced target: pgasyncslave
#    is cut off from pgmaster (simulate_partition on both), pgslave still
#    streams from it and answers it.  rk_failover('pgasyncslave', force => true) on
#    pgasyncslave is refused: pgslave had contact with the primary, which
#    cannot be fenced from pgasyncslave.  pgmaster stays the primary in the
#    same term and keeps committing.  (Before, pgasyncslave was promoted
#    next to a running primary.)
# 2. A voter with more WAL: pgasyncslave misses commits pgslave has, the
#    primary dies, and rk_failover('pgasyncslave', force => true) is
#    refused; pgslave is promoted instead and nothing is lost.  (Before,
#    force promoted pgasyncslave and the commits only pgslave had were lost.)
# 3. A primary cut off from the majority cannot regain a lease by removing
#    the nodes it cannot reach (rk_remove_standby is refused).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster('replication_kit.auto_failover' => 'off');
$primary->safe_psql('postgres', 'CREATE TABLE probe (v text)');
$primary->safe_psql('postgres', "INSERT INTO probe VALUES ('before')");
$_->poll_query_until('postgres', "SELECT count(*) = 1 FROM probe") or die for ($pgslave, $pgasync);


# Has `node` had no contact with the primary for `ms`?  (Its own view, as
# it answers a probe.)
sub silent_for
{
	my ($node, $ms) = @_;
	my $name = $node->name;
	return defined wait_until(sub {
		my ($ok, $out) = psql_ok($node, "SELECT silence_ms >= $ms FROM rk_peer_state('$name', 0, false)");
		$ok && $out eq 't';
	}, 60);
}

# --- 1. The primary runs, pgasyncslave cannot reach it.
partition($pgasync, 'pgmaster');
partition($primary, 'pgasyncslave');
ok(silent_for($pgasync, 4000), 'pgasyncslave has had no contact with pgmaster for more than failover_timeout');
my ($ok, $out, $err) = psql_ok($pgasync, "SELECT rk_failover('pgasyncslave', force => true)");
ok(!$ok, 'a forced failover to pgasyncslave is refused');
like($err, qr/alive and cannot be fenced from here/, 'because pgslave still has contact with the primary')
  or diag($err);
is($pgasync->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'pgasyncslave is still a standby');
ok(poll_ok($primary, "SELECT count(*) = 1 FROM (SELECT 1 FROM pg_stat_replication WHERE application_name = 'pgslave') s"),
	'pgslave still streams from pgmaster');
$primary->safe_psql('postgres', "INSERT INTO probe VALUES ('after refusal')");
pass('pgmaster still commits');
is($primary->safe_psql('postgres', 'SELECT term FROM rk_cluster'), '1', 'in the same term');
partition($pgasync, undef);
partition($primary, undef);
ok(wait_follows($pgasync, $primary, 120), 'pgasyncslave follows pgmaster again');

# --- 2. pgslave has WAL pgasyncslave lacks; the primary dies.
# (pgmaster's WAL sender to pgasyncslave is frozen: what it has not sent
# yet never reaches pgasyncslave.)
my $sender = $primary->safe_psql('postgres',
	"SELECT pid FROM pg_stat_replication WHERE application_name = 'pgasyncslave'");
kill 'STOP', $sender;
$primary->safe_psql('postgres', "INSERT INTO probe SELECT 'only on pgslave ' || g FROM generate_series(1, 10) g");
kill9($primary);
ok(silent_for($_, 4000), $_->name . ' has had no contact with the dead primary for more than failover_timeout')
  for ($pgslave, $pgasync);
($ok, $out, $err) = psql_ok($pgasync, "SELECT rk_failover('pgasyncslave', force => true)");
ok(!$ok, 'a forced failover to the standby with less WAL is refused');
like($err, qr/pgslave has more WAL/, 'because pgslave has more WAL') or diag($err);
is($pgasync->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'pgasyncslave is still a standby');
my $result = $pgslave->safe_psql('postgres', 'SELECT rk_failover()');
like($result, qr/votes/, 'a failover to pgslave works');
my $new = wait_for_primary(60, $pgslave, $pgasync);
is($new ? $new->name : '', 'pgslave', 'pgslave is the primary');
is($new->safe_psql('postgres', "SELECT count(*) FROM probe WHERE v LIKE 'only on pgslave%'"), '10',
	'the commits pgasyncslave lacked are there');

# --- 3. A primary without its majority may not make one by removing nodes.
# pgslave (pgmaster dead) is cut off from pgasyncslave: its lease runs out.
partition($pgslave, 'pgasyncslave');
partition($pgasync, 'pgslave');
ok(poll_ok($pgslave, "SELECT remark ~ 'fenced' FROM rk_status() WHERE is_self", 60),
	'pgslave, cut off from the majority, is fenced');
for my $gone ('pgmaster', 'pgasyncslave')
{
	($ok, $out, $err) = psql_ok($pgslave, "SELECT rk_remove_standby('$gone')");
	ok(!$ok, "rk_remove_standby('$gone') is refused on a primary without a majority");
	like($err, qr/has no majority/, 'and says why') or diag($err);
}
is($pgslave->safe_psql('postgres', 'SELECT count(*) FROM rk_nodes'), '3', 'the registry still has three nodes');
($ok) = psql_ok($pgslave, "SET synchronous_commit = local; INSERT INTO probe VALUES ('minority')");
ok(!$ok, 'and pgslave still refuses commits');

done_testing();
