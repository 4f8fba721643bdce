# Five failovers in a row: kill -9 whatever node is the primary, under a
# committing client; a new one takes over, the dead node is started again
# and comes back as a standby.  No acknowledged commit lost in any round,
# and the term grows every time.
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

my $current = $primary;
my $last_term = 1;
for my $round (1 .. 5)
{
	wait_follows($_, $current) or die "round $round: " . $_->name . ' does not follow ' . $current->name
	  for grep { $_ != $current } @all;
	my $w = start_writer(write_connstr(@all), $tmp, 'writes');
	my $n = $current->safe_psql('postgres', 'SELECT count(*) FROM writes');
	$current->poll_query_until('postgres', "SELECT count(*) > $n + 20 FROM writes") or die;

	my $t0 = time;
	kill9($current);
	my @rest = grep { $_ != $current } @all;
	my $new = wait_for_primary(30, @rest);
	ok(defined $new, "round $round: " . ($new ? $new->name : 'nobody') . ' took over from ' . $current->name);
	my $before = $new->safe_psql('postgres', 'SELECT count(*) FROM writes');
	$new->poll_query_until('postgres', "SELECT count(*) > $before + 10 FROM writes") or die;
	my $outage = time - $t0;
	my @acked = stop_writer($w);
	my @missing = acked_missing($new, 'writes', @acked);
	is(scalar(@missing), 0, "round $round: " . scalar(@acked) . ' acknowledged commits, none lost')
	  or diag("missing: @missing");
	my $term = $new->safe_psql('postgres', 'SELECT term FROM rk_cluster');
	cmp_ok($term, '>', $last_term, "round $round: term $term after $last_term");
	diag(sprintf('round %d: writes back %.1f s after the kill, term %d', $round, $outage, $term));
	$last_term = $term;

	# The dead node is started again, and comes back as a standby by itself.
	$current->start;
	wait_follows($current, $new)
	  or die "round $round: the old primary does not rejoin";
	$current->_update_pid(1);
	$current = $new;
}

done_testing();
