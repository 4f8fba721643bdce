# A hung primary (SIGSTOP, sockets open) is detected and replaced like a
# dead one, and once it runs again it acknowledges no commit, whatever the
# session's synchronous_commit.  A standby cut off from the primary alone
# causes no failover.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my @all = ($primary, $pgslave, $pgasync);
my $tmp = PostgreSQL::Test::Utils::tempdir;
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$_->poll_query_until('postgres', "SELECT to_regclass('writes') IS NOT NULL") for ($pgslave, $pgasync);

# --- pgslave cut off from pgmaster (both ways: probes and replication):
# pgasyncslave still sees the primary, so there is no majority for a change.
for ([$pgslave, 'pgmaster'], [$primary, 'pgslave'])
{
	my ($node, $peer) = @$_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET replication_kit.simulate_partition = '$peer'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
}
$pgslave->poll_query_until('postgres',
	"SELECT remark LIKE '%no automatic failover%' OR remark LIKE '%contact with the primary%' "
	  . "FROM rk_status() WHERE is_self")
  or die 'pgslave never noticed it lost the primary';
my $remark = $pgslave->safe_psql('postgres', 'SELECT remark FROM rk_status() WHERE is_self');
like($remark, qr/pgasyncslave still had contact|still receives WAL/, "pgslave says why it does not fail over: $remark");
ok(!defined wait_until(sub {
	grep { $_->safe_psql('postgres', 'SELECT pg_is_in_recovery()') eq 'f' } ($pgslave, $pgasync) }, 10),
	'no failover while one standby alone is cut off (watched for three failover_timeouts)');
$primary->safe_psql('postgres', 'INSERT INTO writes VALUES (-1, now())');
pass('the primary keeps its majority and accepts writes');
is($primary->safe_psql('postgres', 'SELECT term FROM rk_cluster'), '1', 'the term did not change');
for my $node ($pgslave, $primary)
{
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET replication_kit.simulate_partition');
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
}
$pgslave->poll_query_until('postgres', "SELECT connection = 'streaming' FROM rk_status() WHERE node_name = 'pgmaster'")
  or die;

# --- SIGSTOP the primary: hung, sockets open.  A session that has its
# transaction ready, committing with synchronous_commit = local, waits.
my $session = $primary->background_psql('postgres', on_error_stop => 0);
$session->query_safe('SET synchronous_commit = local');
$session->query_safe('BEGIN');
$session->query_safe('INSERT INTO writes VALUES (-100, now())');

my $w = start_writer(write_connstr(@all), $tmp);
$primary->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;
my $frozen_at = time;
my @frozen = freeze_node($primary);
my $new = wait_for_primary(30, $pgslave, $pgasync);
ok(defined $new, 'a standby was promoted while the primary hung');
diag(sprintf('%s promoted %.1f s after SIGSTOP', $new->name, time - $frozen_at));
my $before = $new->safe_psql('postgres', 'SELECT count(*) FROM writes');
$new->poll_query_until('postgres', "SELECT count(*) > $before + 10 FROM writes")
  or die 'writes did not resume on the new primary';

# SIGCONT: from now on the old primary acknowledges nothing.
thaw_node(@frozen);
my $committed = eval { $session->query('COMMIT'); $session->{stderr} !~ /ERROR|FATAL|terminat/ };
ok(!$committed, 'the session that was about to commit is refused: ' . (($session->{stderr} // $@) =~ s/\n.*//sr));
eval { $session->quit };
for my $mode ('local', 'off', 'on')
{
	my ($ok, $out, $err) = psql_ok($primary,
		"SET synchronous_commit = $mode; INSERT INTO writes VALUES (-200, now())");
	ok(!$ok, "old primary refuses a commit with synchronous_commit = $mode");
	like($err, qr/cannot commit|read-only transaction|terminating connection|connection to server/,
		"and says why ($mode): " . (split /\n/, $err)[0]);
}

my @acked = stop_writer($w);
my @missing = acked_missing($new, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none missing on the new primary')
  or diag("missing: @missing");
is($new->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id IN (-100, -200)'), '0',
	'nor on the new primary');
my $other = $new == $pgslave ? $pgasync : $pgslave;
wait_follows($other, $new)
  or die;
pass('the other standby follows the new primary');
# The old primary turns into a standby of the new one by itself (more in 006).
wait_follows($primary, $new)
  or die 'the old primary does not follow the new one';
$primary->_update_pid(1);
is($primary->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id IN (-100, -200)'), '0',
	'none of the refused rows exist on the old primary either');

done_testing();
