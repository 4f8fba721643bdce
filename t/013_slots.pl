# Slots are never silently left behind: a standby's slot that went missing
# is recreated by the primary's worker, and one that lost its WAL beyond
# max_slot_wal_keep_size is recreated and reported (rk_events, rk_status on
# every node, with the command that clones the standby again) until the
# standby streams again from a fresh clone.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Path qw(rmtree);
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE filler (x text)');
wait_follows($pgasync, $primary) or die 'pgasyncslave does not follow pgmaster';

my $slot_exists = "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'pgasyncslave')";

# A slot dropped by hand while its standby is down comes back, and the
# standby streams through it again.
$pgasync->stop;
$primary->safe_psql('postgres', "SELECT pg_drop_replication_slot('pgasyncslave')");
ok(poll_ok($primary, $slot_exists, 60), 'the primary recreated the missing slot');
ok(poll_ok($primary,
	"SELECT EXISTS (SELECT 1 FROM rk_events WHERE kind = 'slot_created' AND node_name = 'pgasyncslave')", 60),
	'and said so in rk_events');
$pgasync->start;
ok(wait_follows($pgasync, $primary, 60), 'pgasyncslave streams through the recreated slot');

# A slot that lost its WAL: bound the slots tightly, stop the standby and
# write well past the bound.
$primary->safe_psql('postgres', "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
$primary->reload;
$pgasync->stop;
my $lost_event =
  "SELECT EXISTS (SELECT 1 FROM rk_events WHERE kind = 'slot_lost' AND node_name = 'pgasyncslave')";
my $reported = wait_until(sub {
	$primary->safe_psql('postgres',
		"INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000); "
		  . 'SELECT pg_switch_wal(); CHECKPOINT;');
	$primary->safe_psql('postgres', $lost_event) eq 't';
}, 120);
ok(defined $reported, 'the lost slot is reported in rk_events');
ok(poll_ok($primary,
	"SELECT wal_status <> 'lost' FROM pg_replication_slots WHERE slot_name = 'pgasyncslave'", 60),
	'and recreated with WAL reserved');
is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pgslave' AND state = 'streaming'"),
	'1', 'pgslave kept streaming through its own slot');

# rk_status says so, with the command that clones the standby again, on
# the primary and (through the replicated registry) on the other standby.
my $remark_sql = "SELECT remark FROM rk_status() WHERE node_name = 'pgasyncslave'";
my $remark = $primary->safe_psql('postgres', $remark_sql);
like($remark, qr/must be cloned again: pg_basebackup .*--slot=pgasyncslave .*application_name=pgasyncslave/,
	"rk_status on the primary: $remark");
ok(poll_ok($pgslave, "SELECT remark LIKE '%must be cloned again: pg_basebackup%' FROM rk_status() "
	  . "WHERE node_name = 'pgasyncslave'", 60),
	'rk_status on pgslave says the same');

# The standby itself cannot come back through the new slot: its WAL is gone.
my $offset = -s $pgasync->logfile;
$pgasync->start;
$pgasync->wait_for_log(qr/has already been removed/, $offset);
pass('pgasyncslave cannot stream: the WAL it needs was removed');
like($primary->safe_psql('postgres', $remark_sql), qr/must be cloned again/, 'the report stays');

# The reported command, run as it is, brings it back; the report goes away.
my ($cmd) = $remark =~ /(pg_basebackup .*)$/;
$pgasync->stop('immediate');
rmtree($pgasync->data_dir);
run_clone_command($pgasync, $cmd);
$pgasync->start;
ok(wait_follows($pgasync, $primary, 60), 'the fresh clone streams from the primary');
ok(poll_ok($primary, "SELECT remark IS NULL OR remark NOT LIKE '%cloned again%' FROM rk_status() "
	  . "WHERE node_name = 'pgasyncslave'", 60), 'rk_status no longer reports the lost slot');
is($primary->safe_psql('postgres',
	"SELECT kind FROM rk_events WHERE node_name = 'pgasyncslave' AND kind IN ('slot_lost', 'resynced') "
	  . 'ORDER BY event_id DESC LIMIT 1'), 'resynced', 'rk_events says it streams again');

done_testing();
