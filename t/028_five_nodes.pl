# Five nodes: one primary and four standbys, under ANY 2 and then FIRST 2.
# The primary is killed under a committing client: nothing acknowledged is
# lost, exactly one standby is promoted, and every other node follows it
# (the old primary too, once it is started again).  Then the same with
# FIRST 2 and the new primary killed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $primary = new_kit_node('pgmaster');
setup_primary($primary);
my @standbys = map { clone_standby($primary, "standby$_") } 1 .. 4;
my @all = ($primary, @standbys);
$primary->safe_psql('postgres', "SELECT rk_set_sync('ANY', 2)");
wait_for_sync_state($primary, map { ($_->name => 'quorum') } @standbys);

# One round: kill `victim` under a committing client; returns the new primary.
sub round
{
	my ($label, $table, $victim, @rest) = @_;
	$victim->safe_psql('postgres', "CREATE TABLE $table (id int, at timestamptz)");
	my $w = start_writer(write_connstr(@all), $tmp, $table);
	ok(poll_ok($victim, "SELECT count(*) > 20 FROM $table"), "$label: the client commits");
	kill9($victim);
	my $new = wait_for_primary(120, @rest);
	ok($new, "$label: exactly one of the other four is promoted") or return undef;
	ok(poll_ok($new, 'SELECT NOT pg_is_in_recovery()'), "$label: " . $new->name . ' takes writes');
	my $before = $new->safe_psql('postgres', "SELECT count(*) FROM $table");
	ok(poll_ok($new, "SELECT count(*) > $before + 10 FROM $table"), "$label: the client's writes resume");
	my @acked = stop_writer($w);
	my @missing = acked_missing($new, $table, @acked);
	is(scalar(@missing), 0, "$label: " . scalar(@acked) . ' acknowledged commits, none lost')
	  or diag("missing: @missing");
	for my $n (grep { $_ != $new } @rest)
	{
		ok(wait_follows($n, $new, 120), "$label: " . $n->name . ' follows ' . $new->name);
	}
	my @primaries = grep { (psql_ok($_, 'SELECT pg_is_in_recovery()'))[1] eq 'f' } @rest;
	is(scalar(@primaries), 1, "$label: one primary among the survivors");
	return $new;
}

my $new = round('ANY 2', 'writes1', $primary, @standbys);
is($new->safe_psql('postgres', 'SHOW synchronous_standby_names'),
	'ANY 2 (pgmaster, ' . join(', ', map { $_->name } grep { $_ != $new } @standbys) . ')',
	'the new primary keeps ANY 2 over the other nodes') if $new;

# The old primary comes back by itself as a standby of the new one.
$primary->start(fail_ok => 1);
ok(wait_follows($primary, $new, 180), 'the old primary rejoins as a standby');
$primary->_update_pid(1);

# FIRST 2, and the new primary dies.
$new->safe_psql('postgres', "SELECT rk_set_sync('FIRST', 2)");
my @first = grep { $_ != $new } @all;
wait_for_sync_state($new, $first[0]->name => 'sync', $first[1]->name => 'sync');
my $third = round('FIRST 2', 'writes2', $new, @first);
ok($third, 'a second failover under FIRST 2');

done_testing();
