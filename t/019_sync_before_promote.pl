# A new primary's first commits are synchronous: the stored policy, over the
# remaining nodes, is in force before the promoted standby leaves recovery,
# not applied by the take-over afterwards.  The server log of the new
# primary shows the change of synchronous_standby_names before the new
# timeline, and the first commit there waits for a standby: with the only
# other standby stopped, it does not return.
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

my $log_offset = -s $pgslave->logfile;
kill9($primary);
my $new = wait_for_primary(120, $pgslave, $pgasync);
is($new ? $new->name : '', 'pgslave', 'pgslave, the synchronous standby, is promoted');

my $log = substr(slurp_file($pgslave->logfile), $log_offset);
my $sync_at = index($log, 'parameter "synchronous_standby_names" changed to "FIRST 1 (pgmaster, pgasyncslave)"');
my $tli_at = index($log, 'selected new timeline ID');
ok($sync_at >= 0, 'the new primary set synchronous_standby_names from the stored policy');
ok($tli_at >= 0, 'and left recovery');
ok($sync_at >= 0 && $sync_at < $tli_at, 'the policy was in force before it left recovery')
  or diag("sync change at $sync_at, new timeline at $tli_at");

# The policy holds: with pgasyncslave's WAL receiver frozen (pgmaster is
# dead, pgasyncslave still answers probes, so the lease holds), a commit
# waits: the client gives up after 5 s and the backend keeps waiting.
ok(wait_follows($pgasync, $new, 120), 'pgasyncslave follows the new primary');
my $receiver = $pgasync->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'walreceiver'");
ok($receiver =~ /^\d+$/, "pgasyncslave's WAL receiver runs (pid $receiver)");
kill 'STOP', $receiver;
my $timed_out = 0;
$new->psql('postgres', 'INSERT INTO writes VALUES (2)', timeout => 5, timed_out => \$timed_out);
ok($timed_out, 'a commit on the new primary waits for a synchronous standby');
kill 'CONT', $receiver;
ok(poll_ok($new, 'SELECT count(*) = 1 FROM writes WHERE id = 2'), 'and the waiting commit completed');

done_testing();
