# rk_pause() / rk_resume(): the cluster-wide maintenance mode.
#
# Paused on the primary: every node logs it and rk_status() shows it; a
# switchover still works and the pause survives it.  The new primary is
# killed: for more than three failover_timeouts nobody is promoted, also
# across a standby's restart.  rk_resume() on a standby (the primary is
# down, so no registry can be written): the standbys elect a new primary
# with every acknowledged commit, and that primary clears the pause in the
# registry.  The old primary, started again, is fenced; paused once more,
# it does not rejoin by itself until the pause ends, and then it does.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($pgmaster, $pgslave, $pgasync) = build_cluster();
my @all = ($pgmaster, $pgslave, $pgasync);
$pgmaster->safe_psql('postgres', 'CREATE TABLE acked (id int PRIMARY KEY)');

# Paused on the primary; a standby cannot pause.
like($pgmaster->safe_psql('postgres', "SELECT rk_pause('kernel upgrade')"), qr/^paused: no automatic failover/,
	'rk_pause() on the primary');
my ($ok, $out, $err) = psql_ok($pgslave, "SELECT rk_pause('x')");
ok(!$ok && $err =~ /can only run on the primary/, 'rk_pause() on a standby is refused') or diag($err);
for my $n (@all)
{
	ok(wait_until(sub { slurp_file($n->logfile) =~ /the cluster is paused \(pause \d+ since .*: kernel upgrade\)/ }, 60),
		$n->name . ' logs the pause');
}
ok(poll_ok($pgslave, "SELECT remark LIKE 'cluster paused since %kernel upgrade%' FROM rk_status() WHERE is_self"),
	'rk_status() on a standby shows it');

# A switchover still works, and the pause stays in the registry.
like($pgmaster->safe_psql('postgres', "SELECT rk_switchover('pgslave')"), qr/pgslave/, 'rk_switchover() while paused');
my $p = wait_for_primary(60, @all);
is($p ? $p->name : 'none', 'pgslave', 'pgslave is the primary');
ok(wait_follows($pgmaster, $pgslave, 120), 'the old primary rejoined as a standby (the switchover asked for it)');
is($pgslave->safe_psql('postgres', 'SELECT paused_at IS NOT NULL FROM rk_cluster'), 't',
	'the new primary is paused too');

# Acknowledged commits on pgslave; then a local commit that no standby
# gets (it makes pgslave's WAL diverge), and it dies.
wait_until(sub { (psql_ok($pgslave, "INSERT INTO acked SELECT g FROM generate_series(1, 100) g"))[0] }, 60)
  or die 'pgslave takes no writes';
diverge_and_kill($pgslave, 'INSERT INTO acked VALUES (-1)', $pgmaster, $pgasync);

# For more than three failover_timeouts (3 s each), nobody is promoted.
my $held = "SELECT pg_is_in_recovery() AND remark LIKE '%cluster paused%no automatic failover%' "
  . "AND (regexp_match(remark, 'primary lost (\\d+) ms ago'))[1]::bigint > 9000 FROM rk_status() WHERE is_self";
ok(poll_ok($_, $held), $_->name . ': primary lost for over 9 s, no election while paused') for ($pgmaster, $pgasync);
is(scalar(grep { (psql_ok($_, 'SELECT pg_is_in_recovery()'))[1] eq 't' } $pgmaster, $pgasync), 2,
	'both are still standbys');
$pgasync->restart;
ok(poll_ok($pgasync, $held), 'still paused after a restart');

# Resumed on a standby, with the primary down.
like($pgasync->safe_psql('postgres', 'SELECT rk_resume()'), qr/^resumed on this node/, 'rk_resume() on a standby');
my $new = wait_for_primary(90, $pgmaster, $pgasync);
ok($new, 'a new primary is elected once resumed') or BAIL_OUT('no primary');
is($new->safe_psql('postgres', 'SELECT count(*) FROM acked'), '100', 'with every acknowledged commit');
ok(poll_ok($new, 'SELECT paused_at IS NULL FROM rk_cluster'), 'the new primary cleared the pause in the registry');
ok(poll_ok($new, "SELECT count(*) > 0 FROM rk_events WHERE kind = 'resumed'"), 'rk_events says so');
my $other = $new == $pgmaster ? $pgasync : $pgmaster;
ok(wait_follows($other, $new, 120), $other->name . ' follows ' . $new->name);
ok(wait_until(sub { slurp_file($other->logfile) =~ /pause \d+ is over here/ }, 60), $other->name . ' logs the end');

# Paused again; the old primary comes back, its WAL diverged, and is not
# rewound while paused.
$new->safe_psql('postgres', "SELECT rk_pause('storage work')");
ok(poll_ok($other, 'SELECT paused_at IS NOT NULL FROM rk_cluster'), 'the pause reached the other standby');
$pgslave->start;
ok(poll_ok($pgslave, "SELECT remark LIKE '%paused%no automatic rejoin%' FROM rk_status() WHERE is_self"),
	'the old primary waits: no automatic rejoin while paused')
  or diag($pgslave->safe_psql('postgres', 'SELECT remark FROM rk_status() WHERE is_self'));
($ok, $out, $err) = psql_ok($pgslave, 'INSERT INTO acked VALUES (1000)');
ok(!$ok, 'it takes no writes');
is($pgslave->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE id = -1'), '1', 'and is not rewound');

# Resumed on the primary: the old primary, whose own registry copy never
# sees the pause cleared, is told by the primary's worker and rejoins.
like($new->safe_psql('postgres', 'SELECT rk_resume()'), qr/^resumed: pause \d+ ended/, 'rk_resume() on the primary');
ok(wait_follows($pgslave, $new, 120), 'the old primary rejoins as a standby');
is($pgslave->safe_psql('postgres', 'SELECT count(*) FROM acked'), '100', 'rewound: without its local commit');

done_testing();
