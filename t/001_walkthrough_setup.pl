# The walkthrough's steps 4-14 with the kit: a primary with a synchronous
# and an asynchronous standby, set up from psql and cloned with the command
# the kit hands out, on real servers on loopback.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();

# Step 14: exactly the walkthrough's synchronous setup.
is($primary->safe_psql('postgres', 'SHOW synchronous_standby_names'),
	'FIRST 1 (pgslave, pgasyncslave)', 'synchronous_standby_names as in step 14');
is($primary->safe_psql('postgres',
		"SELECT string_agg(application_name || ':' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication"),
	'pgasyncslave:potential,pgslave:sync', 'pgslave is sync, pgasyncslave potential');

# Each standby streams from its own slot, under its own name.
is($primary->safe_psql('postgres',
		"SELECT string_agg(slot_name || ':' || active, ',' ORDER BY slot_name) FROM pg_replication_slots"),
	'pgasyncslave:true,pgslave:true', 'one active physical slot per standby');

# A committed row reaches both standbys.
$primary->safe_psql('postgres', 'CREATE TABLE users (id int PRIMARY KEY, name text)');
$primary->safe_psql('postgres', "INSERT INTO users VALUES (1, 'first')");
for my $s ($pgslave, $pgasync)
{
	$s->poll_query_until('postgres', "SELECT count(*) = 1 FROM users WHERE id = 1")
	  or die "row did not reach " . $s->name;
	pass('row committed on the primary is on ' . $s->name);
}

# Every node knows who it is: a clone does not believe it is pgmaster.
for my $n ([$primary, 'pgmaster'], [$pgslave, 'pgslave'], [$pgasync, 'pgasyncslave'])
{
	my ($node, $name) = @$n;
	is($node->safe_psql('postgres', 'SELECT node_name FROM rk_status() WHERE is_self'),
		$name, "rk_status on $name knows itself");
	$node->poll_query_until('postgres',
		"SELECT pg_read_file('replication_kit.state') ~ 'node_name = $name\n'")
	  or die "state file of $name never named it";
	pass("the state file of $name names it");
}

# rk_status agrees on all three nodes.
my $expected = "pgasyncslave|standby\npgmaster|primary\npgslave|standby";
is(status_of($_), $expected, 'rk_status roles as seen from ' . $_->name)
  for ($primary, $pgslave, $pgasync);
like(status_of($primary, 'node_name, connection, sync_state, slot_active'),
	qr/pgasyncslave\|streaming\|potential\|t\npgmaster\|self\|\|\npgslave\|streaming\|sync\|t/,
	'rk_status on the primary shows streaming, sync states and active slots');
like(status_of($pgslave, 'node_name, connection'),
	qr/pgmaster\|streaming/, 'rk_status on a standby shows its WAL receiver');

# The replication password never reaches a server log.
for my $n ($primary, $pgslave, $pgasync)
{
	my $log = slurp_file($n->logfile);
	unlike($log, qr/\Q$REPL_PASSWORD\E/, 'no replication password in the log of ' . $n->name);
}
unlike($primary->safe_psql('postgres', 'SELECT string_agg(r::text, \'\') FROM rk_status() r'),
	qr/\Q$REPL_PASSWORD\E/, 'no password in rk_status');

# Stopping pgslave makes pgasyncslave sync, and writes go on.
$pgslave->stop;
wait_for_sync_state($primary, pgasyncslave => 'sync');
pass('pgasyncslave became sync when pgslave stopped');
$primary->safe_psql('postgres', "INSERT INTO users VALUES (2, 'while pgslave is down')");
$pgasync->poll_query_until('postgres', 'SELECT count(*) = 2 FROM users')
  or die 'write did not reach pgasyncslave';
pass('a synchronous write commits through pgasyncslave');
$pgslave->start;
wait_for_sync_state($primary, pgslave => 'sync', pgasyncslave => 'potential');
pass('pgslave is sync again after it came back');

# Primary-only functions refuse to run on a standby and change nothing there.
my $before = $pgslave->safe_psql('postgres',
	"SELECT md5(pg_read_binary_file('postgresql.auto.conf')::text || pg_read_binary_file(current_setting('hba_file'))::text)");
for my $call ("rk_add_standby('pgthird', '127.0.0.1', 5999)", "rk_set_sync('ANY', 1)",
	"rk_remove_standby('pgasyncslave')", "rk_create_replicator('replicator', 'x')",
	"rk_setup_primary('pgslave', '127.0.0.1', 5999)")
{
	my ($ok, $out, $err) = psql_ok($pgslave, "SELECT $call");
	ok(!$ok, "$call refused on a standby");
	like($err, qr/can only run on the primary/, "$call says it needs the primary");
}
is($pgslave->safe_psql('postgres',
		"SELECT md5(pg_read_binary_file('postgresql.auto.conf')::text || pg_read_binary_file(current_setting('hba_file'))::text)"),
	$before, 'the standby\'s configuration files are unchanged');

# The worker: on every node, with a recognisable backend_type; it reloads
# on SIGHUP and is restarted after it ends.
for my $n ($primary, $pgslave, $pgasync)
{
	is($n->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'replication_kit worker'"),
		'1', 'one replication_kit worker on ' . $n->name);
}
my $offset = -s $primary->logfile;
$primary->safe_psql('postgres', "ALTER SYSTEM SET replication_kit.probe_interval = '400ms'; SELECT pg_reload_conf()");
ok($primary->wait_for_log(qr/replication_kit: worker reloaded its configuration/, $offset),
	'the worker reloads its configuration on SIGHUP');

# Timing settings that work against each other are called out.
unlike(slurp_file($primary->logfile), qr/the commit lease .* is not longer than a probe round/,
	'no timing warning with consistent settings');
$offset = -s $primary->logfile;
$primary->safe_psql('postgres', "ALTER SYSTEM SET replication_kit.probe_timeout = '3s'; SELECT pg_reload_conf()");
ok($primary->wait_for_log(qr/WARNING:  replication_kit: the commit lease \(2000 ms\) is not longer than a probe round with a hung node \(3400 ms\)/,
	$offset), 'a lease shorter than a probe round with a hung node is warned about');
$primary->safe_psql('postgres', "ALTER SYSTEM RESET replication_kit.probe_timeout; SELECT pg_reload_conf()");
my $old_pid = $primary->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'replication_kit worker'");
$primary->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)");
my $gone = RKTest::wait_until(sub {
	$primary->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $old_pid") eq '0' });
ok(defined $gone, 'the worker stops on SIGTERM');
diag(sprintf('worker stopped %.2fs after SIGTERM', $gone)) if defined $gone;
$primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'replication_kit worker' AND pid <> $old_pid")
  or die 'worker was not restarted';
pass('the postmaster restarts the worker');

# rk_remove_standby leaves no slot behind and rebuilds the sync list.
my $kit_conns = "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('replication_kit pgmaster', 'replication_kit pgslave')";
ok(poll_ok($pgasync, "SELECT ($kit_conns) = 2", 60), "the other nodes' workers keep a connection to pgasyncslave") or diag($pgasync->safe_psql('postgres', 'SELECT application_name, usename, state, backend_type FROM pg_stat_activity'));
is($primary->safe_psql('postgres', "SELECT rk_remove_standby('pgasyncslave')"),
	'removed standby "pgasyncslave"', 'rk_remove_standby');
is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgasyncslave'"),
	'0', 'no slot left for the removed standby');
is($primary->safe_psql('postgres', 'SHOW synchronous_standby_names'),
	'FIRST 1 (pgslave)', 'sync list rebuilt without the removed standby');
is(status_of($primary), "pgmaster|primary\npgslave|standby", 'registry without the removed standby');
ok(poll_ok($pgasync, "SELECT ($kit_conns) = 0", 60), 'and they close it once the registry no longer holds it');
$primary->safe_psql('postgres', "INSERT INTO users VALUES (3, 'after removal')");
$pgslave->poll_query_until('postgres', 'SELECT count(*) = 3 FROM users') or die;
pass('replication goes on after the removal');

# Without shared_preload_libraries the functions refuse, with the fix in the hint.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION replication_kit');
my ($ok, $out, $err) = psql_ok($plain, "SELECT * FROM rk_setup_primary('plain', '127.0.0.1', 5999)");
ok(!$ok, 'functions refuse to run without the preloaded library');
like($err, qr/not loaded through shared_preload_libraries.*\n.*\n.*HINT:  Add replication_kit to shared_preload_libraries/s,
	'the error says how to fix it');
$plain->stop;

done_testing();
