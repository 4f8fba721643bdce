# Clients that fill max_connections on the standbys must not cost the
# primary its lease.  The primary renews its lease with probes that log in
# to the standbys as the nodes' role; if ordinary clients hold every slot
# there, those logins fail, the lease runs out and the primary refuses
# every commit although nothing is wrong with the cluster.  The last
# replication_kit.reserved_connections slots are kept for the nodes' role
# (and superusers), the way superuser_reserved_connections keeps slots for
# superusers.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster(max_connections => 16);
$primary->safe_psql('postgres', 'CREATE ROLE app LOGIN; CREATE TABLE writes (at timestamptz)');
$primary->safe_psql('postgres', 'GRANT INSERT ON writes TO app');
$_->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_roles WHERE rolname = 'app'") or die
  for ($pgslave, $pgasync);

# Open sessions as the ordinary role until the standby refuses one.  A
# session counts once the standby shows it running its sleep.
my @held;
sub fill
{
	my ($node) = @_;
	my $count = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND state = 'active'";
	my $before = $node->safe_psql('postgres', $count);
	for my $i (1 .. 30)
	{
		my ($in, $out, $err) = ('', '', '');
		my $h = IPC::Run::start(
			[ 'psql', '-X', '-At', '-U', 'app', '-d', $node->connstr('postgres'), '-c', 'SELECT pg_sleep(600)' ],
			\$in, \$out, \$err);
		my $up = 0;
		wait_until(sub {
			$h->pump_nb if $h->pumpable;
			return 1 unless $h->pumpable;
			$up = $node->safe_psql('postgres', $count) == $before + $i;
			return $up;
		}, 60);
		if ($up)
		{
			push @held, $h;
			next;
		}
		$h->finish;
		return $err;
	}
	return '';
}

for my $node ($pgslave, $pgasync)
{
	my $refused = fill($node);
	like($refused, qr/remaining connection slots are reserved for replication_kit's nodes/,
		$node->name . ' refuses an ordinary client once only the reserved slots are left');
}

# The primary's worker keeps its connections to the standbys open, so it
# must log in again only when one breaks.  Break them, and let the clients
# take whatever slot that frees before the worker's next probe.
for my $node ($pgslave, $pgasync)
{
	$node->safe_psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'replication_kit_node'");
	fill($node);
}
diag(scalar(@held) . ' ordinary sessions hold the standbys\' slots');

# The primary keeps its lease: for three fence timeouts (2 s each), every
# commit is accepted.  Without the reserve its probes fail at both standbys
# and it refuses commits once the lease has run out.
my ($committed, $refused, $last_err) = (0, 0, '');
my $t0 = time;
while (time - $t0 < 6)
{
	my ($ok, $out, $err) = psql_ok($primary,
		'SET synchronous_commit = local; INSERT INTO writes VALUES (now())');
	if ($ok) { $committed++ } else { $refused++; $last_err = $err }
}
is($refused, 0, "the primary accepted all $committed commits while clients held the standbys' slots")
  or diag("last refusal: $last_err");
is($primary->safe_psql('postgres', 'SELECT count(*) FROM rk_peer_view() WHERE reachable'), '2',
	'and its probes still reach both standbys');

# Superusers keep PostgreSQL's own reserve, and the nodes' role its own.
is($pgslave->safe_psql('postgres', 'SELECT 1'), '1', 'a superuser still connects to a full standby');

$_->kill_kill for @held;
done_testing();
