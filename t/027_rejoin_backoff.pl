# A rewind whose source cannot be reached is tried again until it can, and
# the node comes back by itself.  pgmaster is killed with WAL its standbys
# never got; pgslave is promoted and refuses rewind connections
# (simulate_partition = 'rk_rejoin'), as a degraded network would.  pgmaster
# is started again: it comes up as pgslave's standby, its rewind cannot
# reach pgslave, and it retries with a growing pause, saying so in
# rk_status(), read-only all along.  Once pgslave accepts rewinds again,
# pgmaster is rewound and streams from it.  (Before, the first failed
# pg_rewind marked the rejoin failed for good.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my $new = fail_over_diverged($primary, $pgslave, $pgasync);

$new->safe_psql('postgres', "ALTER SYSTEM SET replication_kit.simulate_partition = 'rk_rejoin'");
$new->safe_psql('postgres', 'SELECT pg_reload_conf()');

# Its worker sees at once that its WAL diverged and starts the rewind, so
# the server may be gone again before pg_ctl sees it up.
$primary->start(fail_ok => 1);
my $writable = 0;
my $attempts = 0;
my $remark = '';
my $retried = wait_until(sub {
	my ($ok, $out) = psql_ok($primary,
		"SELECT pg_is_in_recovery()::text || '|' || coalesce(remark, '') FROM rk_status() WHERE is_self");
	return 0 unless $ok;
	my ($rec, $r) = split /\|/, $out, 2;
	$writable = 1 if $rec ne 'true';
	$remark = $r;
	$attempts = $1 if $r =~ /could not reach it \(attempt (\d+)/ && $1 > $attempts;
	return $attempts >= 3;
}, 120);
ok(defined $retried, "pgmaster's rewind is retried (attempt $attempts)") or diag("last remark: $remark");
like($remark, qr/next attempt in \d+ s/, 'rk_status says when the next attempt comes');
ok(!$writable, 'pgmaster stayed read-only');
my $rejoin_log = $primary->data_dir . '/replication_kit.rejoin.log';
like(slurp_file($rejoin_log), qr/cannot reach its source.*data directory is unchanged/,
	'the rejoin log says why the rewind waits');
ok(!-e $primary->data_dir . '/replication_kit.rejoin_failed', 'the rejoin is not marked failed');

# The network heals: the next attempt rewinds pgmaster, which then streams.
$new->safe_psql('postgres', 'ALTER SYSTEM RESET replication_kit.simulate_partition');
$new->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok(wait_follows($primary, $new, 180), 'pgmaster is rewound and streams from pgslave');
$primary->_update_pid(1);
is($primary->safe_psql('postgres', "SELECT string_agg(v, ',' ORDER BY v) FROM probe"), 'before',
	'what only pgmaster had is gone, the rest is there');
ok(!-e $primary->data_dir . '/replication_kit.rejoin_retry', 'the retry marker is gone');

done_testing();
