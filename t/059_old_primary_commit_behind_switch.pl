# The other side of t/058: an old primary that is up, fenced and out of
# recovery counts as a heard member of the synchronous list only for a
# candidate that replayed onto the new primary's timeline.
#
# Five nodes, FIRST 1.  Commit X is acknowledged by pgmaster with standby1
# as its synchronous standby while the other standbys are down, so only
# pgmaster and standby1 have X.  pgmaster hangs, standby1 wins and is
# promoted, then dies before anyone streamed from it (pg_hba.conf lines of
# the test's own keep the others from streaming X from either).  pgmaster wakes up
# fenced, on the old timeline, with X.  standby2..4 are still behind the
# switch to standby1's timeline: counting pgmaster as "holds nothing
# acknowledged" there would let one of them win without X.  None may win
# until standby1 is back; then X is on the primary.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

# auto_rejoin off: the old primary stays out of recovery, as one does while
# it waits to learn whom to rejoin (a rejoin would bring it back as a
# standby that holds X, and it would win).
my $primary = new_kit_node('pgmaster', 'replication_kit.auto_rejoin' => 'off');
setup_primary($primary);
my @standbys = map { clone_standby($primary, "standby$_") } 1 .. 4;
my ($s1, @behind) = @standbys;
$primary->safe_psql('postgres', "SELECT rk_set_sync('FIRST', 1)");
wait_for_sync_state($primary, standby1 => 'sync', map { ($_->name => 'potential') } @behind);
$primary->safe_psql('postgres', 'CREATE TABLE x (id int)');
$_->poll_query_until('postgres', "SELECT to_regclass('x') IS NOT NULL") or die for @behind;

# standby2..4 receive nothing more: their WAL receivers hang and pgmaster
# ends its WAL senders to them, so X reaches only standby1.  (Their workers
# still answer: pgmaster keeps its lease.)
my @hung;
for my $n (@behind)
{
	my $pid = $n->safe_psql('postgres', 'SELECT pid FROM pg_stat_wal_receiver');
	die $n->name . ' has no WAL receiver' unless $pid;
	kill 'STOP', $pid;
	push @hung, $pid;
}
$primary->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name <> 'standby1'");
$primary->safe_psql('postgres', 'INSERT INTO x VALUES (42)');
pass('commit X acknowledged by pgmaster, with standby1 as its synchronous standby');
ok(poll_ok($s1, 'SELECT count(*) = 1 FROM x'), 'standby1 has X');

# From now on pgmaster and standby1 serve no WAL to a new connection: a
# line of the test's own at the top of their pg_hba.conf rejects
# replication (standby1's stream from pgmaster is already up; the kit's
# node-to-node calls and votes are no replication connections).
my %hba;
for my $n ($primary, $s1)
{
	my $file = $n->data_dir . '/pg_hba.conf';
	$hba{$n->name} = slurp_file($file);
	open my $fh, '>', $file or die;
	print $fh "host replication all 127.0.0.1/32 reject\n" . $hba{ $n->name };
	close $fh;
	$n->reload;
}

# pgmaster hangs; the WAL receivers of standby2..4 go on (they wait on the
# hung pgmaster); standby1, with the most WAL, wins and takes over, and the
# others point at it.
my @frozen = freeze_node($primary);
kill 'CONT', @hung;
my $new = wait_for_primary(120, @standbys);
is($new && $new->name, 'standby1', 'standby1 wins the failover');
ok(poll_ok($s1, "SELECT worker_state = 'primary' FROM rk_local_node()"), 'and takes over');
my $s1_tli = $s1->safe_psql('postgres', 'SELECT timeline FROM rk_local_node()');
my $s1_port = $s1->port;
ok(poll_ok($_, "SELECT current_setting('primary_conninfo') ~ 'port=''?$s1_port'"), $_->name . ' points at standby1')
  for @behind;
is($_->safe_psql('postgres', 'SELECT count(*) FROM x'), '0', $_->name . ' does not have X') for @behind;

# standby1 dies; pgmaster wakes up, fenced (its lease ran out long ago), on
# the old timeline, holding X.
kill9($s1);
thaw_node(@frozen);
ok( poll_ok($primary, "SELECT worker_state <> 'primary' AND NOT pg_is_in_recovery() FROM rk_local_node()"),
	'pgmaster is fenced and out of recovery');
cmp_ok($primary->safe_psql('postgres', 'SELECT timeline FROM rk_local_node()'),
	'<', $s1_tli, "on a timeline older than standby1's");

# None of standby2..4 may win without X: they are behind the switch to
# standby1's timeline, so pgmaster does not count as heard for them.
my $wrongly;
wait_until(
	sub {
		for my $n (@behind)
		{
			my ($ok, $out) = psql_ok($n, 'SELECT pg_is_in_recovery()');
			$wrongly = $n->name if $ok && $out eq 'f';
		}
		return defined $wrongly;
	},
	20);
ok(!defined $wrongly, 'no standby without X is promoted (watched for 20 s)')
  or diag("$wrongly was promoted without X");
like(
	join('', map { $_->safe_psql('postgres', "SELECT coalesce(remark, '') FROM rk_status() WHERE is_self") } @behind),
	qr/cannot rule out losing acknowledged commits/,
	'they say why they wait');

# standby1 comes back: X is on whichever node is the primary at the end.
for my $n ($primary, $s1)
{
	open my $fh, '>', $n->data_dir . '/pg_hba.conf' or die;
	print $fh $hba{ $n->name };
	close $fh;
}
$primary->reload;
$s1->start;
my $final = wait_for_kit_primary(180, @standbys);
ok(defined $final,
	'a primary again once standby1 is back');
is($final && $final->safe_psql('postgres', 'SELECT count(*) FROM x'), '1', 'and X is on it');

done_testing();
