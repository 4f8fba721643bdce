# A replaced primary writes standby.signal the moment it learns of the newer
# term, so that it comes back as a standby whoever restarts it: here it is
# restarted without the kit in shared_preload_libraries (no fence at start,
# no commit guard) and is still no writer.  Then, restarted with the kit,
# it rejoins by the documented call.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster('replication_kit.auto_rejoin' => 'off');
$primary->safe_psql('postgres', 'CREATE TABLE probe (v text)');
$primary->safe_psql('postgres', "INSERT INTO probe VALUES ('before')");
$pgslave->poll_query_until('postgres', 'SELECT count(*) = 1 FROM probe') or die;

my @frozen = freeze_node($primary);
my $new = wait_for_primary(60, $pgslave, $pgasync) or die 'no failover';
thaw_node(@frozen);
ok(poll_ok($primary, "SELECT remark LIKE '%auto_rejoin is off%' FROM rk_status() WHERE is_self"),
	'the old primary knows it was replaced and waits for rk_rejoin()');
ok(-e $primary->data_dir . '/standby.signal', 'it wrote standby.signal');

# Restarted by hand, without the kit.
$primary->stop('immediate');
PostgreSQL::Test::Utils::system_or_bail('pg_ctl', '-D', $primary->data_dir, '-l', $primary->logfile,
	'-o', "-c shared_preload_libraries=''", '-w', 'start');
$primary->_update_pid(1);
is($primary->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't',
	'restarted without the kit, it comes up in recovery');
my ($ok) = psql_ok($primary, 'SET default_transaction_read_only = off; SET synchronous_commit = local; '
	  . "INSERT INTO probe VALUES ('written without the kit')");
ok(!$ok, 'and takes no write');

# With the kit again (a stop and a start: pg_ctl restart would keep the
# options of the run without it): the documented call brings it back.
$primary->stop;
$primary->start;
ok(poll_ok($primary, 'SELECT pg_is_in_recovery()'), 'with the kit it is a standby too');
ok(defined wait_until(sub { (psql_ok($primary, 'SELECT rk_rejoin()'))[0] }, 60), 'rk_rejoin() is accepted')
  or diag((psql_ok($primary, 'SELECT rk_rejoin()'))[2]);
ok(wait_follows($primary, $new, 180), 'after rk_rejoin() it streams from the new primary');
is($new->safe_psql('postgres', "SELECT count(*) FROM probe WHERE v = 'written without the kit'"), '0',
	'nothing the old primary could have written reached the cluster');

done_testing();
