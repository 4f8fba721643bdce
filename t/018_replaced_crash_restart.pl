# A primary that was replaced never comes back as a writer, also not through
# a crash-restart (which skips the fence at start and loses the fence kept
# in memory).  pgmaster is frozen, pgslave wins term 2; pgmaster resumes and
# learns it (auto_rejoin off, so it stays a fenced primary), then one of its
# processes is killed and the postmaster reinitialises.  It must come back
# acknowledging nothing and must not raise the term: pgslave stays the
# primary and keeps every commit it acknowledged.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster('replication_kit.auto_rejoin' => 'off');
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY)');
$primary->safe_psql('postgres', 'INSERT INTO writes VALUES (1)');
$_->poll_query_until('postgres', 'SELECT count(*) = 1 FROM writes') or die for ($pgslave, $pgasync);

my @frozen = freeze_node($primary);
my $new = wait_for_primary(120, $pgslave, $pgasync);
ok(defined $new, 'a standby is promoted while pgmaster is frozen');
thaw_node(@frozen);
ok(poll_ok($primary, "SELECT remark LIKE '%auto_rejoin is off%' FROM rk_status() WHERE is_self", 120),
	'pgmaster learns it was replaced and waits for rk_rejoin()');
my $term = $new->safe_psql('postgres', "SELECT term FROM rk_status() WHERE is_self");

$new->safe_psql('postgres', 'SET synchronous_commit = local; INSERT INTO writes VALUES (2)');

# A crash-restart: kill -9 of the worker makes the postmaster reinitialise.
my $worker = $primary->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'replication_kit worker'");
ok($worker =~ /^\d+$/, 'pgmaster\'s worker runs');
kill 'KILL', $worker;
ok(defined wait_until(sub {
	my ($ok, $out) = psql_ok($primary, "SELECT pid <> $worker FROM pg_stat_activity WHERE backend_type = 'replication_kit worker'");
	$ok && $out eq 't';
}, 60), 'pgmaster is back after the crash-restart, with a new worker');

# For several failover_timeouts: pgmaster acknowledges nothing, pgslave stays primary.
my $deadline = time + 10;
my ($old_commits, $new_refusals) = (0, 0);
while (time < $deadline)
{
	my ($ok) = psql_ok($primary, 'SET synchronous_commit = local; INSERT INTO writes VALUES (100000 + (random() * 100000)::int)');
	$old_commits++ if $ok;
	my $err;
	($ok, undef, $err) = psql_ok($new, 'SET synchronous_commit = local; INSERT INTO writes SELECT max(id) + 1 FROM writes WHERE id < 100000');
	$new_refusals++ if !$ok && $err =~ /fenced and no longer the primary/;
	usleep(250_000);
}
is($old_commits, 0, 'the replaced primary acknowledged no commit after its crash-restart');
is($new_refusals, 0, 'the new primary was never fenced');
is($new->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'the new primary is still the primary');
is($new->safe_psql('postgres', "SELECT term FROM rk_status() WHERE is_self"), $term, 'in the same term');
is($new->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id IN (1, 2)'), '2',
	'with every commit it acknowledged');

# rk_rejoin() brings it back as a standby, as before.
$primary->safe_psql('postgres', 'SELECT rk_rejoin()');
ok(wait_follows($primary, $new, 180), 'after rk_rejoin() the old primary follows the new one');

done_testing();
