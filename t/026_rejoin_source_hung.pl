# An old primary comes back while the node it must be rewound from cannot
# take new connections: pgslave, the new primary, has its postmaster
# stopped (SIGSTOP), so a connection to it times out, as in a degraded
# network.  Before, the rejoin ran pg_rewind anyway after a fixed grace,
# pg_rewind failed ("timeout expired"), the server was started anyway and
# stopped at once ("requested timeline 2 does not contain minimum recovery
# point"), and the node stayed down after pgslave came back.  Now the old
# primary waits, read-only, for its source to answer, and rejoins by itself.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my $new = fail_over_diverged($primary, $pgslave, $pgasync);

# pgslave takes no new connection for 20 s; pgmaster starts meanwhile.
my @postmaster = node_pids($new);
kill 'STOP', $postmaster[0];
$primary->start(fail_ok => 1);
my $writable = 0;
wait_until(sub {
	my ($ok, $out) = psql_ok($primary, 'SELECT pg_is_in_recovery()');
	$writable = 1 if $ok && $out ne 't';
	return 0;
}, 20);
kill 'CONT', $postmaster[0];
ok(!$writable, 'pgmaster stayed read-only while its source hung');

ok(wait_follows($primary, $new, 180), 'once pgslave answers, pgmaster is rewound and streams from it')
  or diag(slurp_file($primary->data_dir . '/replication_kit.rejoin.log'));
$primary->_update_pid(1);
is($primary->safe_psql('postgres', "SELECT string_agg(v, ',' ORDER BY v) FROM probe"), 'before',
	'what only pgmaster had is gone, the rest is there');
ok(!-e $primary->data_dir . '/replication_kit.rejoin_failed', 'the rejoin is not marked failed');

done_testing();
