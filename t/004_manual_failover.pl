# rk_failover(): refused while the primary is healthy; forced to a chosen
# standby, it fences the primary, waits until the target has all its WAL,
# and leaves one primary with the other standby following it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my @all = ($primary, $pgslave, $pgasync);
my $tmp = PostgreSQL::Test::Utils::tempdir;
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$_->poll_query_until('postgres', "SELECT to_regclass('writes') IS NOT NULL") for ($pgslave, $pgasync);
# Let every worker see every other node once.
$pgslave->poll_query_until('postgres', "SELECT count(*) = 2 FROM rk_peer_view() WHERE reachable") or die;

# A dry run explains, and changes nothing.
my $plan = $pgslave->safe_psql('postgres', 'SELECT rk_failover(dry_run => true)');
like($plan, qr/dry run on pgslave.*primary pgmaster is reachable.*refused while the primary is reachable/,
	"dry run: $plan");

# Refused while the primary is healthy, from any node.
for my $node (@all)
{
	my ($ok, $out, $err) = psql_ok($node, 'SELECT rk_failover()');
	ok(!$ok, 'rk_failover() refused on ' . $node->name . ' while the primary is healthy');
	like($err, qr/refused.*\n.*reachable/, 'and says the primary is reachable');
}
my ($ok, $out, $err) = psql_ok($primary, "SELECT rk_failover('nosuchnode')");
like($err, qr/node "nosuchnode" is not registered/, 'an unknown target is refused');
is($primary->safe_psql('postgres', 'SELECT term FROM rk_cluster'), '1', 'nothing changed: term 1');

# Forced, to pgasyncslave, asked on pgmaster itself, under a committing client.
my $w = start_writer(write_connstr(@all), $tmp);
$primary->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;
my $result = $primary->safe_psql('postgres', "SELECT rk_failover('pgasyncslave', force => true)");
like($result, qr/pgmaster fenced at .*caught up.*pgasyncslave promoted in term 2/,
	"forced failover: $result");
my $new = wait_for_primary(30, $pgslave, $pgasync);
is($new ? $new->name : 'none', 'pgasyncslave', 'pgasyncslave is the primary');
my $before = $new->safe_psql('postgres', 'SELECT count(*) FROM writes');
$new->poll_query_until('postgres', "SELECT count(*) > $before + 10 FROM writes")
  or die 'writes did not resume';
my @acked = stop_writer($w);
my @missing = acked_missing($new, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none lost') or diag("missing: @missing");

# A consistent cluster: pgslave follows pgasyncslave, pgmaster commits nothing.
wait_follows($pgslave, $pgasync)
  or die 'pgslave does not follow pgasyncslave';
pass('pgslave streams from pgasyncslave');
($ok, $out, $err) = psql_ok($primary, 'SET synchronous_commit = off; INSERT INTO writes VALUES (-1, now())');
ok(!$ok, 'the old primary refuses commits');
is($new->safe_psql('postgres', 'SHOW synchronous_standby_names'), 'FIRST 1 (pgmaster, pgslave)',
	'the stored policy on the new primary');
is($new->safe_psql('postgres', 'SELECT term FROM rk_cluster'), '2', 'term 2');
# The fenced old primary comes back as pgasyncslave's standby by itself.
wait_follows($primary, $pgasync)
  or die 'the old primary does not follow the new one';
$primary->_update_pid(1);
pass('the old primary streams from pgasyncslave');
like($new->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY event_id) FROM rk_events WHERE term >= 1"),
	qr/manual_failover.*election.*promote.*take_over/, 'the manual failover is in rk_events');

done_testing();
