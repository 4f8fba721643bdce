# A primary that cannot renew its lease is no primary to wait for.  Here
# pgmaster's worker hangs (SIGSTOP: as if stuck on a lock or an fsync) while
# the server itself, its backends and its WAL senders run on.  Its lease runs
# out, so it refuses commits; it also answers the standbys' probes as
# acknowledging nothing, and the keepalives its WAL senders still send do
# not count as a live primary: the standbys elect a new primary.  When the
# worker resumes, it learns of the newer term and rejoins as a standby.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY); CREATE TABLE probes (at timestamptz)');
$primary->safe_psql('postgres', 'INSERT INTO writes VALUES (1)');
$_->poll_query_until('postgres', 'SELECT count(*) = 1 FROM writes') or die for ($pgslave, $pgasync);

my $worker = $primary->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'replication_kit worker'");
ok($worker =~ /^\d+$/, "pgmaster's worker runs (pid $worker)");
kill 'STOP', $worker;

ok(defined wait_until(sub {
	my ($ok, $out, $err) = psql_ok($primary, 'SET default_transaction_read_only = off; SET synchronous_commit = local; INSERT INTO probes VALUES (now())');
	!$ok && $err =~ /has not heard from a majority/;
}, 60), 'with its worker hung, the primary refuses commits once its lease runs out');

my $new = wait_for_primary(60, $pgslave, $pgasync);
ok(defined $new, 'a standby is promoted although pgmaster still runs and streams')
  or diag(status_of($pgslave, 'node_name, role, remark'));
ok(defined wait_until(sub {
	(psql_ok($new, 'SET default_transaction_read_only = off; SET synchronous_commit = local; INSERT INTO writes VALUES (2) ON CONFLICT DO NOTHING'))[0] }, 60),
	'the new primary commits');
my ($ok, $out, $err) = psql_ok($primary, 'SET default_transaction_read_only = off; SET synchronous_commit = local; INSERT INTO writes VALUES (3)');
ok(!$ok, 'the old primary still refuses commits');

kill 'CONT', $worker;
ok(wait_follows($primary, $new, 120), 'with its worker back, the old primary rejoins as a standby of the new one');
is($new->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id IN (1, 2)'), '2', 'nothing acknowledged is lost');

done_testing();
