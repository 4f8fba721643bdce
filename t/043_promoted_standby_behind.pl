# The primary dies for good and an operator promotes a standby by hand
# (pg_promote()) that lacks the last commits: the other standby has them,
# acknowledged.  The promoted node counts at the point where its own
# timeline forked off (t/042), so the other standby is elected, with every
# acknowledged commit, and the promoted node is rewound to it and follows.
# Before, the promoted node's newer timeline made it look the most advanced:
# nobody was elected, for ever; and had it been, the last commits were lost.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE probe (v int)');
$primary->safe_psql('postgres', 'INSERT INTO probe SELECT generate_series(1, 100)');
$_->poll_query_until('postgres', 'SELECT count(*) = 100 FROM probe') or die for ($pgslave, $pgasync);

# pgslave is cut off from the primary; the next commits are acknowledged
# by pgasyncslave alone (FIRST 1 takes the next standby in the list).
$primary->safe_psql('postgres', "ALTER SYSTEM SET replication_kit.simulate_partition = 'pgslave'");
$primary->safe_psql('postgres', 'SELECT pg_reload_conf()');
$primary->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'pgslave') t")
  or die;
wait_for_sync_state($primary, pgasyncslave => 'sync');
$primary->safe_psql('postgres', 'INSERT INTO probe SELECT generate_series(101, 150)');
is($pgslave->safe_psql('postgres', 'SELECT count(*) FROM probe'), '100', 'pgslave lacks the last 50 commits');
kill9($primary);
is($pgslave->safe_psql('postgres', 'SELECT pg_promote()'), 't', 'the operator promotes pgslave by hand');

my $writer;
wait_until(sub {
	for my $n ($pgslave, $pgasync)
	{
		my ($ok) = psql_ok($n, "SET synchronous_commit = local; INSERT INTO probe VALUES (-1)");
		if ($ok) { $writer = $n; return 1; }
	}
	return 0;
}, 120);
is($writer ? $writer->name : '', 'pgasyncslave', 'pgasyncslave, which has them, is elected')
  or diag(join('', map {
		my ($ok, $out) = psql_ok($_, "SELECT coalesce(remark, '') FROM rk_status() WHERE is_self");
		$_->name . ": $out\n" } ($pgslave, $pgasync)));
SKIP:
{
	skip 'no primary', 3 unless $writer;
	is($writer->safe_psql('postgres', 'SELECT count(*) FROM probe WHERE v > 0'), '150',
		'every acknowledged commit is on it');
	ok(wait_follows($pgslave, $writer, 180), 'pgslave is rewound and follows it')
	  or diag(slurp_file($pgslave->data_dir . '/replication_kit.rejoin.log'));
	$pgslave->_update_pid(1);
	is($pgslave->safe_psql('postgres', 'SELECT count(*) FROM probe WHERE v > 0'), '150',
		'and has every acknowledged commit');
}

done_testing();
