# The node-to-node client keeps one connection per peer address, in a fixed
# number of slots.  Over a worker's life the registry can list more
# addresses than that (standbys added and removed).  A new address must
# never take the slot of a call still running in the same round: that was a
# use after free, and the worker crashed (the postmaster then restarts the
# whole node, ending every session on the primary).  Here 24 standbys that
# never run are added and removed, one after another, while the worker
# probes each of them: its process lives on, and no process crashes.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my $worker_sql = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'replication_kit worker'";
my $worker = $primary->safe_psql('postgres', $worker_sql);
ok($worker =~ /^\d+$/, "pgmaster's worker runs (pid $worker)");
my $log_offset = -s $primary->logfile;

for my $i (1 .. 24)
{
	my $port = 31000 + $i;		# nothing listens there
	$primary->safe_psql('postgres', "SET synchronous_commit = local; SELECT rk_add_standby('ghost$i', '127.0.0.$i', $port, sync => false)");
	# The worker probes the new address (and fails to reach it) ...
	ok(poll_ok($primary, "SELECT remark IS NOT NULL FROM rk_status() WHERE node_name = 'ghost$i'", 60),
		"the worker probed ghost$i at 127.0.0.$i:$port") or last;
	$primary->safe_psql('postgres', "SET synchronous_commit = local; SELECT rk_remove_standby('ghost$i')");
}

is($primary->safe_psql('postgres', $worker_sql), $worker, 'the worker is the same process throughout');
my $log = substr(slurp_file($primary->logfile), $log_offset);
unlike($log, qr/terminated by signal|exited with exit code/,
	'no process of pgmaster crashed');
ok((psql_ok($primary, 'SET synchronous_commit = local; CREATE TABLE after_churn (x int)'))[0],
	'the primary still commits');
is(status_of($primary), "pgasyncslave|standby\npgmaster|primary\npgslave|standby", 'the registry is as before');

done_testing();
