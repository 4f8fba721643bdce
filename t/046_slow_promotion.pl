# A winner whose promotion takes longer than failover_timeout keeps its win.
# Both standbys run a report query that holds a lock the primary's last WAL
# needs (max_standby_*_delay 20 s), so after the primary dies the elected
# standby's pg_promote() waits for that query to be cancelled.  Meanwhile
# the other standby's vote hold runs out: it must wait for the take-over,
# not run a term of its own that deposes the winner as it takes over and
# leaves the cluster without a primary (F1 of the safety issue).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IPC::Run;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my @all = ($primary, $pgslave, $pgasync);
my @standbys = ($pgslave, $pgasync);
my $tmp = PostgreSQL::Test::Utils::tempdir;
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY, at timestamptz)');
$primary->safe_psql('postgres', 'CREATE TABLE blocker (x int)');
$_->poll_query_until('postgres', "SELECT to_regclass('blocker') IS NOT NULL") for @standbys;
for my $s (@standbys)
{
	$s->safe_psql('postgres', "ALTER SYSTEM SET max_standby_streaming_delay = '20s'");
	$s->safe_psql('postgres', "ALTER SYSTEM SET max_standby_archive_delay = '20s'");
	$s->safe_psql('postgres', 'SELECT pg_reload_conf()');
}

my $w = start_writer(write_connstr(@all), $tmp);
$primary->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;

# A report on each standby holds blocker; the primary then takes an
# ACCESS EXCLUSIVE lock on it, which replay must wait for.
my @reports = map {
	IPC::Run::start(['psql', '-X', '-q', '-d', $_->connstr('postgres'), '-c',
		'BEGIN; LOCK TABLE blocker IN ACCESS SHARE MODE; SELECT pg_sleep(120); COMMIT;'],
		'>', '/dev/null', '2>', '/dev/null')
} @standbys;
for my $s (@standbys)
{
	$s->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
		  . "WHERE c.relname = 'blocker' AND l.granted") or die 'no report holds blocker';
}
$primary->safe_psql('postgres', 'BEGIN; LOCK TABLE blocker IN ACCESS EXCLUSIVE MODE; COMMIT');
for my $s (@standbys)
{
	$s->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE backend_type = 'startup'")
	  or die $s->name . "'s replay does not wait for the report";
}
pass('replay waits for the reports on both standbys');
my $before_kill = $primary->safe_psql('postgres', 'SELECT count(*) FROM writes');
$primary->poll_query_until('postgres', "SELECT count(*) > $before_kill + 10 FROM writes") or die;

my $killed_at = time;
kill9($primary);
my $new = wait_for_primary(120, @standbys);
ok(defined $new, 'a standby took over') or die;
my $other = $new == $pgslave ? $pgasync : $pgslave;
diag(sprintf('%s answers as the primary %.1f s after the kill', $new->name, time - $killed_at));
# It answers as a primary a moment before its take-over is in rk_events.
ok(poll_ok($new, "SELECT EXISTS (SELECT 1 FROM rk_events WHERE kind = 'take_over' AND term = 2)", 60),
	$new->name . ' took over in term 2');
my $took = $new->safe_psql('postgres',
	"SELECT extract(epoch FROM max(at) FILTER (WHERE kind = 'take_over')) "
	  . "- extract(epoch FROM max(at) FILTER (WHERE kind = 'votes')) FROM rk_events WHERE term = 2");
cmp_ok($took, '>', 2 * 3, "its take-over came ${took} s after its win, more than the other's vote hold");

# It stays the primary: no later term deposed it.
ok(!defined wait_until(sub {
	my ($ok, $out) = psql_ok($new, 'SELECT pg_is_in_recovery() OR term <> 2 FROM rk_cluster');
	!$ok || $out ne 'f' }, 10), $new->name . ' stays the primary of term 2 (watched 10 s)');
like(slurp_file($other->logfile), qr/vote given to @{[$new->name]} for term 2/,
	$other->name . ' voted for it');
unlike(slurp_file($new->logfile), qr/vote (given|refused) to @{[$other->name]} for term (?!2\b)\d+/,
	$other->name . ' asked for no vote in a later term');

my $before = $new->safe_psql('postgres', 'SELECT count(*) FROM writes');
$new->poll_query_until('postgres', "SELECT count(*) > $before + 10 FROM writes")
  or die 'writes did not resume on the new primary';
my @acked = stop_writer($w);
my @missing = acked_missing($new, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none missing on ' . $new->name)
  or diag("missing: @missing");
wait_follows($other, $new, 120) or die $other->name . ' does not follow ' . $new->name;
pass($other->name . ' streams from ' . $new->name);
$_->kill_kill for @reports;

done_testing();
