# The old primary never writes again and comes back as a standby by itself:
# after SIGSTOP/SIGCONT it is fenced and then rejoins; after kill -9 under
# write load and a plain pg_ctl start, it starts in recovery (the fence at
# start), is rewound because its WAL diverged, and streams from the new
# primary.  No acknowledged commit is lost anywhere.
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

# Exactly one primary and two streaming standbys, all agreeing.
sub check_cluster
{
	my ($label) = @_;
	my $p = wait_for_primary(60, @all);
	ok(defined $p, "$label: exactly one primary");
	wait_follows($_, $p) or die "$label: " . $_->name . ' does not follow ' . $p->name
	  for grep { $_ != $p } @all;
	pass("$label: two standbys stream from " . $p->name);
	is(status_of($_), status_of($p), "$label: rk_status on " . $_->name . ' agrees')
	  for grep { $_ != $p } @all;
	return $p;
}

# --- 1. SIGSTOP the primary, let the standbys fail over, SIGCONT it.
my $w = start_writer(write_connstr(@all), $tmp);
$primary->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;
my @frozen = freeze_node($primary);
my $new = wait_for_primary(30, $pgslave, $pgasync) or die 'no failover';
my $before = $new->safe_psql('postgres', 'SELECT count(*) FROM writes');
$new->poll_query_until('postgres', "SELECT count(*) > $before + 3 FROM writes") or die;
thaw_node(@frozen);
my $thawed = time;
# From this moment it acknowledges no commit, even with synchronous_commit = off.
my $refused = 0;
for (1 .. 5)
{
	my ($ok, $out, $err) = psql_ok($primary, 'SET synchronous_commit = off; INSERT INTO writes VALUES (-1, now())');
	$refused++ if !$ok;
}
is($refused, 5, 'the thawed old primary refuses every commit (synchronous_commit = off)');
my $as_standby = wait_until(sub {
	my ($ok, $out) = psql_ok($primary, 'SELECT pg_is_in_recovery()');
	$ok && $out eq 't';
}, 60);
ok(defined $as_standby, 'the old primary is a standby again, by itself');
diag(sprintf('old primary in recovery %.1f s after SIGCONT', time - $thawed)) if defined $as_standby;
$primary->_update_pid(1);
my $p = check_cluster('after SIGSTOP/SIGCONT');
my @acked = stop_writer($w);
my @missing = acked_missing($p, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none missing') or diag("missing: @missing");
is($p->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id = -1'), '0', 'no refused commit exists');
like(slurp_file($primary->data_dir . '/replication_kit.rejoin.log'), qr/pg_rewind done/, 'it was rewound');

# --- 2. kill -9 the primary with WAL its standbys never got, then pg_ctl start.
my $old = $p;
my @standbys = grep { $_ != $old } @all;
$w = start_writer(write_connstr(@all), $tmp);
$old->poll_query_until('postgres', 'SELECT count(*) > 20 FROM writes') or die;
# Freeze its WAL senders, then commit locally only: WAL no standby will see.
my $senders = $old->safe_psql('postgres', "SELECT string_agg(pid::text, ' ') FROM pg_stat_replication");
kill 'STOP', split(/ /, $senders);
$old->safe_psql('postgres', 'SET synchronous_commit = local; CREATE TABLE diverged (x int)');
$old->safe_psql('postgres', 'SET synchronous_commit = local; INSERT INTO diverged SELECT generate_series(1, 10000)')
  for 1 .. 3;
kill9($old);
$new = wait_for_primary(30, @standbys) or die 'no failover';
$before = $new->safe_psql('postgres', 'SELECT count(*) FROM writes');
$new->poll_query_until('postgres', "SELECT count(*) > $before + 3 FROM writes") or die;

my $started = time;
# Its worker may decide to rewind it at once (the timeline history says its
# WAL diverged), so the server can be gone again before pg_ctl sees it up.
$old->start(fail_ok => 1);
my ($ok, $out);
wait_until(sub { ($ok, $out) = psql_ok($old, 'SELECT pg_is_in_recovery()'); $ok }, 90);
is($out, 't', 'started with pg_ctl start, the old primary is in recovery from its first connection');
($ok) = psql_ok($old, 'INSERT INTO writes VALUES (-2, now())');
ok(!$ok, 'and accepts no write');
like(slurp_file($old->logfile), qr/fence at start: \w+ is the primary of term \d+; \w+ starts as its standby/,
	'the fence at start said why');
# It cannot follow the new timeline as it is: its worker rewinds it.
my $rejoin_log = $old->data_dir . '/replication_kit.rejoin.log';
ok(defined wait_until(sub { -f $rejoin_log && slurp_file($rejoin_log) =~ /pg_rewind done.*pg_ctl start returned 0/s }, 90),
	'its diverged WAL was rewound');
wait_follows($old, $new)
  or die 'the old primary does not stream from the new one';
pass('the old primary streams from the new primary');
diag(sprintf('diverged old primary streams %.1f s after pg_ctl start', time - $started));
$old->_update_pid(1);
is($old->safe_psql('postgres', "SELECT to_regclass('diverged') IS NULL"), 't',
	'what only the old primary had is gone');
$p = check_cluster('after kill -9 and pg_ctl start');
@acked = stop_writer($w);
@missing = acked_missing($p, 'writes', @acked);
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged commits, none missing') or diag("missing: @missing");
my %terms = map { $_->name => $_->safe_psql('postgres', 'SELECT term FROM rk_status() WHERE is_self') } @all;
is(scalar(grep { $_ eq '3' } values %terms), 3, 'every node is in term 3');

done_testing();
