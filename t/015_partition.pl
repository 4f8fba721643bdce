# The primary cut off from both standbys while it keeps running (probes and
# replication both cut, replication_kit.simulate_partition on every side):
# it stops acknowledging commits before the standbys can elect a new primary
# (fence_timeout < failover_timeout), the standbys elect one, and when the
# partition heals the old primary learns of the newer term, is rewound (its
# WAL went on without them) and streams from the new primary.  No commit a
# client saw acknowledged through the multi-host string is lost.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my @all = ($primary, $pgslave, $pgasync);
my $tmp = PostgreSQL::Test::Utils::tempdir;
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$primary->safe_psql('postgres', 'CREATE TABLE local_writes (id serial PRIMARY KEY, at timestamptz)');
$_->poll_query_until('postgres', "SELECT to_regclass('local_writes') IS NOT NULL") for ($pgslave, $pgasync);


my $w = start_writer(write_connstr(@all), $tmp);
$primary->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;

# Cut pgmaster off.  A session on it goes on committing with
# synchronous_commit = local (no standby needed), a row every 10 ms stamped
# with the server's clock, until the fence refuses a commit.
my ($cut_at, $err, $last_local) = cut_off_committing($primary, $pgslave, $pgasync);
like($err, qr/has not heard from a majority|is not acknowledged: this primary lost its lease/,
	'the cut-off primary stops committing by itself');

my $new = wait_for_primary(60, $pgslave, $pgasync);
ok(defined $new, 'the standbys elected a new primary') or die;
poll_ok($new, "SELECT EXISTS (SELECT 1 FROM rk_events WHERE kind = 'promote' AND term = 2)", 60)
  or die 'no promote event in rk_events';
my $promoted_at = $new->safe_psql('postgres',
	"SELECT extract(epoch FROM at) FROM rk_events WHERE kind = 'promote' AND term = 2");
note(sprintf('last commit on the old primary %.2f s after the cut; %s promoted %.2f s after it',
	$last_local - $cut_at, $new->name, $promoted_at - $cut_at));
ok($last_local < $promoted_at, 'the old primary acknowledged its last commit before the new one was promoted');
is($primary->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f',
	'while cut off, the old primary cannot know it was replaced: it stays a fenced primary');

# Heal.  The old primary hears of term 2, is fenced for good, rewound and
# rejoins; the writer finds the new primary.
partition($_, undef) for @all;
ok(defined wait_until(sub {
	my ($ok, $out) = psql_ok($primary, 'SELECT pg_is_in_recovery()');
	$ok && $out eq 't' }, 90), 'after the heal the old primary is a standby');
wait_follows($_, $new, 90) or die $_->name . ' does not follow ' . $new->name for grep { $_ != $new } @all;
pass('both other nodes stream from ' . $new->name);
like(slurp_file($primary->data_dir . '/replication_kit.rejoin.log'), qr/pg_rewind done/,
	'its WAL went on without the others: it was rewound');

my $before = $new->safe_psql('postgres', 'SELECT count(*) FROM writes');
$new->poll_query_until('postgres', "SELECT count(*) > $before FROM writes")
  or die 'the writer did not come back';
my @acked = stop_writer($w);
my @missing = acked_missing($new, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none missing on ' . $new->name)
  or diag("missing: @missing");
is($new->safe_psql('postgres', 'SELECT term FROM rk_cluster'), '2', 'in term 2');
is(scalar(grep { (psql_ok($_, 'SELECT pg_is_in_recovery()'))[1] eq 'f' } @all), 1, 'exactly one primary');

done_testing();
