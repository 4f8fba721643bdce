# rk_switchover() to each standby in turn and back, under a committing
# client: no acknowledged commit lost, and at every moment a client can
# observe, at most one node accepts writes.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IPC::Run;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my @all = ($primary, $pgslave, $pgasync);
my %by_port = map { $_->port => $_->name } @all;
my $tmp = PostgreSQL::Test::Utils::tempdir;
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$primary->safe_psql('postgres', 'CREATE TABLE observed (at timestamptz, node text)');
$_->poll_query_until('postgres', "SELECT to_regclass('observed') IS NOT NULL") for ($pgslave, $pgasync);
$pgslave->poll_query_until('postgres', "SELECT count(*) = 2 FROM rk_peer_view() WHERE reachable") or die;

# The observer: tries a local-commit write on every node in turn, all the
# time, and logs "time node" for every write a node accepted.
my $obs_log = "$tmp/observed";
my $obs_script = join("\n",
	'while [ ! -f ' . "$tmp/stop_observer" . ' ]; do',
	(map {
		my $port = $_->port;
		"  if timeout 2 psql -X -q -d 'host=127.0.0.1 port=$port dbname=postgres connect_timeout=1' "
		  . "-c \"SET synchronous_commit = local; INSERT INTO observed VALUES (clock_timestamp(), '$by_port{$port}')\" "
		  . ">/dev/null 2>&1; then echo \"\$(date +%s.%N) $by_port{$port}\" >> $obs_log; fi"
	} @all),
	'done');
my $observer = IPC::Run::start(['bash', '-c', $obs_script]);

my $w = start_writer(write_connstr(@all), $tmp);
$primary->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;

my $current = $primary;
my @outages;
for my $target ($pgslave, $pgasync, $primary)
{
	my $name = $target->name;
	my $t0 = time;
	my $result = $current->safe_psql('postgres', "SELECT rk_switchover('$name')");
	like($result, qr/fenced at .*caught up.*$name promoted in term/, "switchover to $name: $result");
	my $p = wait_for_primary(30, @all);
	is($p ? $p->name : 'none', $name, "$name is the primary");
	my $before = $p->safe_psql('postgres', 'SELECT count(*) FROM writes');
	$p->poll_query_until('postgres', "SELECT count(*) > $before + 5 FROM writes") or die;
	push @outages, time - $t0;
	# The old primary rejoins as a standby by itself (a switchover does not wait for auto_rejoin).
	wait_follows($_, $p) or die "the cluster did not come back whole after the switchover to $name"
	  for grep { $_ != $p } @all;
	pass("after the switchover to $name, both other nodes stream from it");
	# The old primary's slots would hold its WAL back as a standby, until
	# max_slot_wal_keep_size, and then be reported lost: it drops them.
	ok(poll_ok($current, 'SELECT count(*) = 0 FROM pg_replication_slots', 60),
		$current->name . ', a standby now, dropped the slots it had as the primary');
	$_->_update_pid(1) for @all;
	$current = $p;
}
diag(sprintf('switchover to first new writes: %s s', join(', ', map { sprintf '%.1f', $_ } @outages)));

my @acked = stop_writer($w);
open my $fh, '>', "$tmp/stop_observer";
close $fh;
$observer->finish;
my @missing = acked_missing($current, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none lost') or diag("missing: @missing");

# Every observed write belongs to the primary of its moment: the sequence of
# accepting nodes never goes back to a node once another one took over.
open my $in, '<', $obs_log or die;
my @seq = map { (split / /)[1] } grep { /\S/ } map { chomp; $_ } <$in>;
close $in;
my @runs;
for (@seq) { push @runs, $_ if !@runs || $runs[-1] ne $_ }
is(join(' ', @runs), 'pgmaster pgslave pgasyncslave pgmaster',
	'writes were accepted by one node at a time, in switchover order (' . scalar(@seq) . ' observations)');

done_testing();
