# A switchover whose promotion does not happen must not leave the cluster
# without a primary (issue 10, item 9).
#
# pgmaster's WAL sender to pgasyncslave is frozen while a client commits
# through the multi-host string, so pgasyncslave falls behind.
# rk_switchover('pgasyncslave') fences pgmaster, and pgasyncslave cannot
# catch up within its 30 s: the switchover is refused.  pgmaster stays
# fenced (it acknowledges nothing: pgasyncslave may still take its WAL and
# be promoted later), and it answers the standbys as fenced, so they count
# it as lost and elect pgslave, which has every acknowledged commit, within
# failover_timeout of the refusal plus a bound.  The old primary rejoins as
# a standby; no commit the client saw acknowledged is lost.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 't';
use RKTest;

my ($pgmaster, $pgslave, $pgasync) = build_cluster();
my @all = ($pgmaster, $pgslave, $pgasync);
my $tmp = PostgreSQL::Test::Utils::tempdir;
$pgmaster->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$_->poll_query_until('postgres', "SELECT to_regclass('writes') IS NOT NULL") or die for ($pgslave, $pgasync);

my $w = start_writer(write_connstr(@all), $tmp);
$pgmaster->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;

my $sender = $pgmaster->safe_psql('postgres',
	"SELECT pid FROM pg_stat_replication WHERE application_name = 'pgasyncslave'");
ok($sender =~ /^\d+$/, "pgmaster streams to pgasyncslave (WAL sender $sender)") or BAIL_OUT('no WAL sender');
kill 'STOP', $sender;
$pgmaster->poll_query_until('postgres', "SELECT count(*) > 20 FROM writes WHERE at > now() - interval '1 s'") or die;
my $lsn = $pgmaster->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
ok(poll_ok($pgasync, "SELECT pg_last_wal_receive_lsn() < '$lsn'"), 'pgasyncslave is behind');

# The fenced primary answers the standbys as fenced: while pgasyncslave
# waits for WAL it cannot get, pgslave's election in a newer term may end
# the wait ("a newer term began"), or the wait runs out first, or
# pgasyncslave gets the WAL but pgslave, with more, refuses its vote.
my $called_at = time;
my ($ok, $out, $err) = psql_ok($pgmaster, "SELECT rk_switchover('pgasyncslave')", timeout => 180);
ok(!$ok, 'the switchover is refused');
like($err, qr/switchover to "pgasyncslave" refused/, 'the promotion did not happen') or diag($err);
diag($err);
kill 'CONT', $sender;

# Not left without a primary: a standby is elected (pgslave, the
# synchronous one, unless pgasyncslave caught up in the meantime).
my $new = wait_for_primary(60, $pgslave, $pgasync);
ok(defined $new, 'a standby is elected after the fence') or BAIL_OUT('no primary');
my $promoted_at = $new->safe_psql('postgres',
	"SELECT extract(epoch FROM max(at)) FROM rk_events WHERE kind = 'promote'");
diag(sprintf('%s promoted %.1f s after rk_switchover() was called (failover_timeout 3 s)',
	$new->name, $promoted_at - $called_at));
ok($promoted_at - $called_at < 30, 'within a bound far above failover_timeout, not after the 30 s catch-up wait');
($ok) = psql_ok($pgmaster, 'SET synchronous_commit = local; INSERT INTO writes VALUES (-1, now())');
ok(!$ok, 'the fenced old primary still takes no commit');
ok(wait_until(sub { (psql_ok($new, "INSERT INTO writes VALUES (-2, now())"))[0] }, 60), 'the new primary takes writes');

my ($other) = grep { $_ != $new } ($pgslave, $pgasync);
ok(wait_follows($other, $new, 120), $other->name . ' follows ' . $new->name);
ok(wait_follows($pgmaster, $new, 180), 'the old primary rejoins as a standby');

my @acked = stop_writer($w);
my @missing = acked_missing($new, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none lost') or diag("missing: @missing");

done_testing();
