# When the standby with the most WAL does not take over, the next best does,
# without losing what only the first one had.  pgslave (the synchronous
# standby) has replication_kit.auto_failover = off, and pgasyncslave missed
# commits that pgslave acknowledged.  The primary dies.  pgslave waits for an
# operator; after a second failover_timeout pgasyncslave streams the missing
# WAL from pgslave, then runs and wins: every acknowledged commit is on the
# new primary, and pgslave follows it.  (Before, nobody was promoted.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$pgslave->safe_psql('postgres', 'ALTER SYSTEM SET replication_kit.auto_failover = off; SELECT pg_reload_conf()');
$primary->safe_psql('postgres', 'CREATE TABLE acked (id int PRIMARY KEY)');
$primary->safe_psql('postgres', 'INSERT INTO acked VALUES (0)');
$_->poll_query_until('postgres', 'SELECT count(*) = 1 FROM acked') or die for ($pgslave, $pgasync);

# pgasyncslave is cut off from the primary while these commits are acknowledged.
partition($pgasync, 'pgmaster');
partition($primary, 'pgasyncslave');
ok(poll_ok($primary, "SELECT count(*) = 0 FROM pg_stat_replication WHERE application_name = 'pgasyncslave'"),
	'pgasyncslave no longer streams from pgmaster');
$primary->safe_psql('postgres', "INSERT INTO acked VALUES ($_)") for 1 .. 20;
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
is($pgasync->safe_psql('postgres', 'SELECT count(*) FROM acked'), '1', 'pgasyncslave lacks the 20 commits');
ok(poll_ok($pgslave, "SELECT pg_last_wal_receive_lsn() >= '$lsn'"), 'pgslave has them');

$primary->stop('immediate');
partition($pgasync, undef);

my $new = wait_for_primary(90, $pgslave, $pgasync);
is($new ? $new->name : 'none', 'pgasyncslave', 'pgasyncslave is promoted in place of pgslave');
is($pgasync->safe_psql('postgres', 'SELECT count(*) FROM acked'), '21', 'with every acknowledged commit');
like(slurp_file($pgasync->logfile), qr/streaming from it before running in its place/,
	'it caught up from pgslave first (the log says so)');
is($pgslave->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'pgslave stayed a standby');
ok(wait_follows($pgslave, $pgasync, 90), 'pgslave follows the new primary');

done_testing();
