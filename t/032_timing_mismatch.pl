# Timing settings that differ between nodes (issue: safety, item 6).  The
# primary runs with a long lease (fence_timeout 6 s, failover_timeout 12 s)
# while both standbys elect after 2 s of silence.  Read per node, the old
# primary would go on acknowledging commits for seconds after the standbys
# elected a new one.  The nodes tell each other their settings, and the
# lease follows the smallest failover_timeout: cut off, the old primary
# acknowledges its last commit before the new primary is promoted, and the
# logs say that the settings differ.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster(
	'replication_kit.fence_timeout' => "'6s'",
	'replication_kit.failover_timeout' => "'12s'");
for my $n ($pgslave, $pgasync)
{
	$n->safe_psql('postgres', "ALTER SYSTEM SET replication_kit.failover_timeout = '2s'");
	$n->safe_psql('postgres', 'SELECT pg_reload_conf()');
}
$primary->safe_psql('postgres', 'CREATE TABLE local_writes (id serial PRIMARY KEY, at timestamptz)');
$_->poll_query_until('postgres', "SELECT to_regclass('local_writes') IS NOT NULL") for ($pgslave, $pgasync);

# The primary learns the standbys' settings from their answers and says so.
ok(defined wait_until(sub { slurp_file($primary->logfile) =~ /failover_timeout = 2000 ms, this node 12000 ms: the lease here is now (\d+) ms/ }, 60),
	'the primary warns that a standby elects sooner than its own lease would allow');
my ($lease) = slurp_file($primary->logfile) =~ /the lease here is now (\d+) ms/;
cmp_ok($lease, '<', 2000, "its lease ($lease ms) is shorter than the standbys' failover_timeout");

# Cut the primary off while a session on it commits locally every 10 ms.
my ($cut_at, $err, $last_local) = cut_off_committing($primary, $pgslave, $pgasync);
like($err, qr/has not heard from a majority|is not acknowledged: this primary lost its lease/,
	'the cut-off primary stops committing by itself');

my $new = wait_for_primary(60, $pgslave, $pgasync);
ok(defined $new, 'the standbys elected a new primary') or die;
# (Elections may be lost before one is won: a voter waits out the longest
# lease it has heard of, which may be the primary's before it learned the
# standbys' settings.)
poll_ok($new, "SELECT EXISTS (SELECT 1 FROM rk_events WHERE kind = 'promote')", 60)
  or die 'no promote event in rk_events';
my $promoted_at = $new->safe_psql('postgres',
	"SELECT extract(epoch FROM at) FROM rk_events WHERE kind = 'promote' ORDER BY event_id DESC LIMIT 1");
note(sprintf('last commit on the old primary %.2f s after the cut; %s promoted %.2f s after it',
	$last_local - $cut_at, $new->name, $promoted_at - $cut_at));
ok($last_local < $promoted_at,
	'the old primary acknowledged its last commit before the new one was promoted');

$_->stop('immediate', fail_ok => 1) for ($primary, $pgslave, $pgasync);
done_testing();
