# Every node restarted at once, cleanly and then immediately: the same
# primary comes back or a correct election happens; never two primaries.
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
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$primary->safe_psql('postgres', 'INSERT INTO writes SELECT g, now() FROM generate_series(1, 100) g');
$pgslave->poll_query_until('postgres', "SELECT count(*) = 2 FROM rk_peer_view() WHERE reachable") or die;

# Count the nodes that accept a write, sampling until one stable primary remains.
sub settle
{
	my ($label) = @_;
	my $max_writable = 0;
	my $p;
	my $stable = 0;
	my $t0 = time;
	while (time - $t0 < 90)
	{
		my @writable = grep {
			my ($ok) = psql_ok($_, "SET synchronous_commit = local; INSERT INTO writes VALUES (-1, now()) "
				  . "ON CONFLICT (id) DO UPDATE SET at = now()");
			$ok;
		} @all;
		$max_writable = @writable if @writable > $max_writable;
		if (@writable == 1 && (!$p || $p == $writable[0]))
		{
			$p = $writable[0];
			$stable++;
		}
		else
		{
			$stable = 0;
			$p = undef;
		}
		last if $stable >= 5;
		usleep(200_000);
	}
	ok($max_writable <= 1, "$label: never two writable nodes (at most $max_writable)");
	ok($stable >= 5, "$label: one primary, " . ($p ? $p->name : 'none'));
	wait_follows($_, $p) or die "$label: " . $_->name . ' does not follow'
	  for grep { $_ != $p } @all;
	pass("$label: both other nodes stream from it");
	is($p->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id > 0'), '100', "$label: no data lost");
	$_->_update_pid(1) for @all;
	return $p;
}

for my $mode ('fast', 'immediate')
{
	# All at once: stop every node, then start them all together.
	my @stoppers = map { IPC::Run::start(['pg_ctl', '-D', $_->data_dir, '-m', $mode, '-w', 'stop'],
			'>', \my $o, '2>', \my $e) } @all;
	$_->finish for @stoppers;
	$_->_update_pid(-1) for @all;
	my @starters = map { IPC::Run::start(['pg_ctl', '-D', $_->data_dir, '-l', $_->logfile,
				'-o', '--cluster-name=' . $_->name, '-w', '-t', '120', 'start'],
			'>', \my $o, '2>', \my $e) } @all;
	$_->finish for @starters;
	$_->_update_pid(1) for @all;
	my $p = settle("restart of every node ($mode)");
	diag("after the $mode restart the primary is " . $p->name);
}

done_testing();
