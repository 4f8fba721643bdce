# Durations are measured on the monotonic clock, not the wall clock.  The
# primary runs under libfaketime (its wall clock only; CLOCK_MONOTONIC and
# CLOCK_BOOTTIME stay true).  Both standbys stop and, at the same moment,
# the primary's wall clock is stepped back an hour: a lease measured on the
# wall clock would then run for an hour more, and the primary would go on
# acknowledging commits next to a majority that may elect a new primary.
# It must refuse them within fence_timeout as usual.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib 't';
use RKTest;

my $libfaketime = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
plan skip_all => "libfaketime is not installed ($libfaketime)" unless -e $libfaketime;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE writes (at timestamptz)');

# Restart the primary with its wall clock under our control (an offset in a file).
my $offset_file = $PostgreSQL::Test::Utils::tmp_check . '/faketime_offset';
sub set_offset
{
	open my $f, '>', $offset_file or die "cannot write $offset_file: $!";
	print $f "$_[0]\n";
	close $f;
}
set_offset('+0');
$primary->stop;
{
	local $ENV{LD_PRELOAD} = $libfaketime;
	local $ENV{FAKETIME_TIMESTAMP_FILE} = $offset_file;
	local $ENV{FAKETIME_NO_CACHE} = '1';
	local $ENV{DONT_FAKE_MONOTONIC} = '1';
	$primary->start;
}
ok(defined wait_until(sub {
	(psql_ok($primary, 'SET default_transaction_read_only = off; SET synchronous_commit = local; INSERT INTO writes VALUES (now())'))[0] }, 60),
	'the primary under libfaketime commits');
wait_follows($_, $primary) or die $_->name . ' does not follow pgmaster' for ($pgslave, $pgasync);

$pgslave->stop;
$pgasync->stop;
set_offset('-3600');
my $stepped_at = time;
is($primary->safe_psql('postgres', 'SELECT extract(epoch FROM clock_timestamp())::bigint < ' . (int(time) - 3000)),
	't', 'the primary\'s wall clock is an hour behind');

my $elapsed = wait_until(sub {
	my ($ok, $out, $err) = psql_ok($primary, 'SET default_transaction_read_only = off; SET synchronous_commit = local; INSERT INTO writes VALUES (now())');
	!$ok && $err =~ /has not heard from a majority/;
}, 60);
ok(defined $elapsed, 'with its wall clock stepped back, the primary still refuses commits without a majority');
note(sprintf('refused %.1f s after the standbys stopped and the clock stepped back (fence_timeout 2 s)',
	time - $stepped_at)) if defined $elapsed;
ok(defined $elapsed && $elapsed < 15, 'within fence_timeout plus a probe round, not an hour');

# Back to the true time; the standbys return and the primary commits again.
set_offset('+0');
$pgslave->start;
$pgasync->start;
ok(defined wait_until(sub {
	(psql_ok($primary, 'SET default_transaction_read_only = off; SET synchronous_commit = local; INSERT INTO writes VALUES (now())'))[0] }, 120),
	'with its majority back it commits again');

done_testing();
