# The README's table of what holds for each synchronous_commit, for the two
# rows no other test covered:
#  - remote_apply with FIRST 1: once a commit returns, the synchronous
#    standby shows it at once; a failover under a client committing with
#    remote_apply loses nothing it acknowledged;
#  - a policy with num_sync = 0 (no synchronous standby): the standby with
#    the most WAL wins a failover, with every commit that had reached it;
#    and a switchover, under a client committing, loses nothing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my @all = ($primary, $pgslave, $pgasync);
my $dir = PostgreSQL::Test::Utils::tempdir;
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int, at timestamptz)');
wait_for_sync_state($primary, pgslave => 'sync', pgasyncslave => 'potential');

# --- remote_apply: applied on the synchronous standby when the commit returns.
my $visible = 0;
for my $i (1 .. 20)
{
	$primary->safe_psql('postgres',
		"SET synchronous_commit = remote_apply; INSERT INTO writes VALUES (-$i, now())");
	$visible++ if $pgslave->safe_psql('postgres', "SELECT count(*) FROM writes WHERE id = -$i") eq '1';
}
is($visible, 20, 'remote_apply: each of 20 commits is visible on the synchronous standby as soon as it returns');

# A failover under a client committing with remote_apply.
my $connstr = write_connstr(@all) . " options='-c synchronous_commit=remote_apply'";
my $w = start_writer($connstr, $dir);
ok(defined wait_until(sub { -s $w->{acked} && (() = slurp_file($w->{acked}) =~ /\n/g) >= 50 }, 60),
	'the remote_apply client commits');
kill9($primary);
my $new = wait_for_primary(60, $pgslave, $pgasync);
ok($new, 'a standby is promoted (' . ($new ? $new->name : 'none') . ')');
ok(defined wait_until(sub { my $n = () = slurp_file($w->{acked}) =~ /\n/g; $n >= 100 }, 60),
	'the client commits again through the new primary');
my @acked = stop_writer($w);
my @missing = acked_missing($new, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' commits acknowledged under remote_apply, none missing on ' . $new->name)
  or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");

# The old primary comes back as a standby of the new one.
my $other = $new == $pgslave ? $pgasync : $pgslave;
$primary->start;
ok(wait_follows($primary, $new, 180), 'pgmaster rejoins as a standby of ' . $new->name);
ok(wait_follows($other, $new, 120), $other->name . ' follows ' . $new->name);

# --- num_sync = 0: no synchronous standby.
$new->safe_psql('postgres', "SET synchronous_commit = local; SELECT rk_set_sync('FIRST', 0)");
ok(poll_ok($new, "SELECT current_setting('synchronous_standby_names') = ''", 30),
	'synchronous_standby_names is empty');

# One standby's WAL receiver frozen: it stays connected and receives nothing.
my ($ahead, $behind) = ($primary, $other);
my $walrcv = $behind->safe_psql('postgres', 'SELECT pid FROM pg_stat_wal_receiver');
ok($walrcv =~ /^\d+$/, $behind->name . "'s WAL receiver runs");
kill 'STOP', $walrcv;
$new->safe_psql('postgres', 'INSERT INTO writes SELECT g, now() FROM generate_series(100001, 100100) g');
my $end = $new->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
ok(poll_ok($ahead, "SELECT pg_last_wal_receive_lsn() >= '$end'", 60), $ahead->name . ' received the 100 rows');
is($behind->safe_psql('postgres', "SELECT pg_last_wal_receive_lsn() < '$end'"), 't', $behind->name . ' did not');
kill9($new);
my $winner = wait_for_primary(60, $ahead, $behind);
kill 'CONT', $walrcv;
is($winner ? $winner->name : 'none', $ahead->name, 'num_sync = 0: the standby with the most WAL won');
is($winner->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id > 100000'), '100',
	'with every commit that had reached it');
ok(poll_ok($winner, "SELECT current_setting('synchronous_standby_names') = ''", 30),
	'and the policy still has no synchronous standby');
ok(wait_follows($behind, $winner, 120), $behind->name . ' follows ' . $winner->name);

# A switchover with num_sync = 0, under a client committing: nothing lost.
$w = start_writer(write_connstr(@all), $dir);
ok(defined wait_until(sub { -s $w->{acked} && (() = slurp_file($w->{acked}) =~ /\n/g) >= 30 }, 60),
	'a client commits');
my $result = $winner->safe_psql('postgres', "SELECT rk_switchover('" . $behind->name . "')");
note("rk_switchover: $result");
ok(poll_ok($behind, 'SELECT NOT pg_is_in_recovery()', 60), $behind->name . ' is the primary after rk_switchover');
my $n0 = () = slurp_file($w->{acked}) =~ /\n/g;
ok(defined wait_until(sub { my $n = () = slurp_file($w->{acked}) =~ /\n/g; $n >= $n0 + 30 }, 60),
	'the client commits through it');
@acked = stop_writer($w);
@missing = acked_missing($behind, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' commits acknowledged around the switchover, none missing on ' . $behind->name)
  or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");

done_testing();
