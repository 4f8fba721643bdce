# A hung standby does not interrupt the primary's commits.  A primary that
# loses its majority (here both standbys stop) stops
# acknowledging commits by itself within fence_timeout, whatever the
# session's synchronous_commit: on the other side of a partition a majority
# may already be electing a new primary.  It stays readable, says why in
# rk_status, and commits again once a majority answers it; nobody else was
# promoted, so the term does not change.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE writes (id serial PRIMARY KEY, at timestamptz)');
$primary->safe_psql('postgres', 'INSERT INTO writes (at) VALUES (now())');
$_->poll_query_until('postgres', 'SELECT count(*) = 1 FROM writes') or die for ($pgslave, $pgasync);

# A commit that needs no standby at all: only the fence can refuse it.
sub local_commit
{
	my ($mode) = @_;
	# A fenced primary looks read-only to new sessions; past that, the guard.
	return psql_ok($primary, "SET default_transaction_read_only = off; SET synchronous_commit = $mode; "
		  . "INSERT INTO writes (at) VALUES (now())");
}

my ($ok, $out, $err) = local_commit('local');
ok($ok, 'with its majority the primary commits');

# A standby that hangs (SIGSTOP: its probe times out every round) takes no
# commit from the primary: pgmaster and pgslave are still a majority, and
# the lease must not lapse between one round and the next.  Commit every
# 10 ms for four seconds, several probe rounds; the first refusal ends it.
my @frozen = freeze_node($pgasync);
($ok, $out, $err) = psql_ok($primary,
	'SET synchronous_commit = local; DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN '
	  . "WHILE clock_timestamp() < t0 + interval '4 s' LOOP "
	  . 'INSERT INTO writes (at) VALUES (clock_timestamp()); COMMIT; PERFORM pg_sleep(0.01); '
	  . 'END LOOP; END $$', timeout => 120);
ok($ok, 'with one standby hung, the primary commits without a gap') or diag($err);
like($primary->safe_psql('postgres', "SELECT remark FROM rk_status() WHERE node_name = 'pgasyncslave'"),
	qr/no (connection|answer) within/, 'while its probes of the hung standby time out');
thaw_node(@frozen);

$pgslave->stop;
$pgasync->stop;
my $lost_at = time;
my $elapsed = wait_until(sub {
	my ($ok, $out, $err) = local_commit('local');
	!$ok && $err =~ /cannot commit: this primary has not heard from a majority of the cluster/;
}, 60);
ok(defined $elapsed, 'without a majority it refuses a commit with synchronous_commit = local');
note(sprintf('commits refused %.1f s after the second standby stopped (fence_timeout 2 s)', time - $lost_at))
  if defined $elapsed;
($ok, $out, $err) = local_commit('off');
like($err, qr/has not heard from a majority/, 'and with synchronous_commit = off');
like($err, qr/HINT:  Check rk_status\(\)/, 'the error tells the client what to do');

is($primary->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'it is still the primary (nobody deposed it)');
ok($primary->safe_psql('postgres', 'SELECT count(*) >= 2 FROM writes'), 'reads go on');
# The worker says so at its next round.
ok(poll_ok($primary, "SELECT remark LIKE 'fenced: %' FROM rk_status() WHERE is_self", 60),
	'rk_status says it is fenced');
# ... and new sessions see it read-only, so that libpq's read-write search passes it by.
ok(poll_ok($primary, "SELECT current_setting('default_transaction_read_only') = 'on'", 60),
	'new sessions on the lease-less primary are read-only');
my $rw = 'host=127.0.0.1 port=' . $primary->port . ' dbname=postgres target_session_attrs=read-write connect_timeout=5';
ok(system('psql', '-XAtq', '-d', $rw, '-c', 'SELECT 1') != 0,
	'a target_session_attrs=read-write client does not take it for a primary');
is($primary->safe_psql('postgres', "SELECT count(*) > 0 FROM rk_status()"), 't',
	'the kit\'s functions still answer there');

# One standby back is a majority again (2 of 3).
$pgslave->start;
ok(defined wait_until(sub { (local_commit('local'))[0] }, 60),
	'with one standby back it commits again');
ok(poll_ok($primary, "SELECT current_setting('default_transaction_read_only') = 'off'", 60),
	'and new sessions are read-write again');
ok(system('psql', '-XAtq', '-d', $rw, '-c', 'SELECT 1') == 0,
	'a read-write client finds it again');
$pgasync->start;
wait_follows($_, $primary) or die $_->name . ' does not follow pgmaster' for ($pgslave, $pgasync);
($ok, $out, $err) = psql_ok($primary, 'INSERT INTO writes (at) VALUES (now())');
ok($ok, 'synchronous commits work again with both standbys streaming');
is($primary->safe_psql('postgres', 'SELECT term FROM rk_cluster'), '1', 'the term did not change');
is(join(',', map { $_->safe_psql('postgres', 'SELECT pg_is_in_recovery()') } ($pgslave, $pgasync)), 't,t',
	'both standbys are still standbys');

done_testing();
