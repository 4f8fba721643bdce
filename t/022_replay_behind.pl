# A standby that restarted may have acknowledged commits on disk that it has
# not replayed yet: until the startup process has replayed its local WAL,
# the replay position under-reports how far its WAL goes.  Such a standby
# must not vote for a candidate with less WAL, and nobody may win without
# it.  Here pgslave (the synchronous standby) restarts with a long
# recovery_min_apply_delay, so its replay stays behind the commits it
# acknowledged; pgasyncslave, stopped earlier, lacks them.  The primary
# dies.  No node may be promoted until pgslave knows how far its WAL goes;
# once the delay is lifted, pgslave wins and nothing acknowledged is lost.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY)');
$primary->safe_psql('postgres', 'INSERT INTO writes VALUES (1)');
$_->poll_query_until('postgres', 'SELECT count(*) = 1 FROM writes') or die for ($pgslave, $pgasync);
# pgslave replays with a long delay from now on: it receives, flushes and
# acknowledges WAL (FIRST 1 waits for the flush), but does not replay it.
$pgslave->safe_psql('postgres', "ALTER SYSTEM SET recovery_min_apply_delay = '1h'");
$pgslave->safe_psql('postgres', 'SELECT pg_reload_conf()');

# Rows 2-10 reach both standbys; then pgasyncslave stops; rows 11-20 are
# acknowledged by pgslave alone.
$primary->safe_psql('postgres', "INSERT INTO writes VALUES ($_)") for 2 .. 10;
$pgasync->poll_query_until('postgres', 'SELECT count(*) = 10 FROM writes') or die;
$pgasync->stop;
$primary->safe_psql('postgres', "INSERT INTO writes VALUES ($_)") for 11 .. 20;
is($pgslave->safe_psql('postgres', 'SELECT count(*) FROM writes'), '1',
	'pgslave acknowledged rows 2-20 but has not replayed them');

# pgslave restarts: the WAL of rows 2-20 is on its disk, its replay waits
# before the first of them, and until it has replayed everything it does
# not stream (so it reports only its replay position).
$pgslave->restart;
kill9($primary);
$pgasync->start;

# For 5 failover_timeouts nobody is promoted: pgasyncslave has less WAL than
# pgslave holds, and pgslave does not know yet how far its WAL goes.
my $deadline = time + 15;
my $promoted = 0;
while (time < $deadline)
{
	for my $n ($pgslave, $pgasync)
	{
		my ($ok, $out) = psql_ok($n, 'SELECT pg_is_in_recovery()');
		$promoted = 1 if $ok && $out eq 'f';
	}
	last if $promoted;
	sleep 1;
}
ok(!$promoted, 'no standby is promoted while pgslave has not replayed its local WAL');
like($pgasync->safe_psql('postgres', "SELECT remark FROM rk_status() WHERE is_self"),
	qr/has not finished replaying its local WAL|has more WAL|no majority|did not|waiting/,
	'pgasyncslave says why it does not take over');

# Lift the delay: pgslave replays and knows its WAL, which is the most.
# Usually it wins; pgasyncslave, which stood by while pgslave could not
# run, may instead have caught up from it (the next-best rule, t/036) and
# be elected with pgslave's vote, which pgslave grants only to a node with
# as much WAL as its own.  Either way every acknowledged commit is there.
$pgslave->safe_psql('postgres', 'ALTER SYSTEM RESET recovery_min_apply_delay');
$pgslave->safe_psql('postgres', 'SELECT pg_reload_conf()');
my $new = wait_for_primary(120, $pgslave, $pgasync);
ok($new, 'a standby is promoted once pgslave knows its WAL (' . ($new ? $new->name : 'none') . ')');
is($new->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id BETWEEN 1 AND 20'), '20',
	'no acknowledged commit is lost') if $new;

done_testing();
