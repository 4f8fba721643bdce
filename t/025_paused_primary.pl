# A primary paused through an election must not get its waiting commits
# acknowledged when it resumes.  pgmaster's WAL senders are frozen while
# two commits wait: 'y' reaches pgasyncslave only, 'x' no standby.  Then
# pgmaster pauses; pgasyncslave, which has the most WAL, is elected with
# pgslave's vote.  pgslave's worker is frozen, so pgslave could not
# re-point by itself.  pgmaster resumes.  Before the fix, pgslave still
# streamed from it, received 'y' and 'x', and acknowledged them: pgmaster's
# client saw 'x' committed, and 'x' is not on the new primary's timeline.
# Now a voter leaves the old primary's stream before it grants, and the old
# primary withholds an acknowledgement once its lease is gone.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
$primary->safe_psql('postgres', 'CREATE TABLE probe (v text)');
$primary->safe_psql('postgres', "INSERT INTO probe VALUES ('before')");
$_->poll_query_until('postgres', "SELECT count(*) = 1 FROM probe") or die for ($pgslave, $pgasync);

my %sender = map { split /\|/ } split /\n/,
  $primary->safe_psql('postgres', 'SELECT application_name, pid FROM pg_stat_replication');
ok($sender{pgslave} && $sender{pgasyncslave}, 'the primary streams to both standbys');
my $worker = $pgslave->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'replication_kit worker'");
ok($worker =~ /^\d+$/, "pgslave's worker runs (pid $worker)");

sub start_commit
{
	my ($value, $out, $err) = @_;
	return IPC::Run::start(
		[ 'psql', '-XAt', '-d', $primary->connstr('postgres'), '-c', "INSERT INTO probe VALUES ('$value')" ],
		'>', $out, '2>', $err);
}

# 'y' waits for pgslave and reaches pgasyncslave; 'x' reaches nobody.
kill 'STOP', $sender{pgslave};
my ($yout, $yerr, $xout, $xerr) = ('', '', '', '');
my $y = start_commit('y', \$yout, \$yerr);
ok($pgasync->poll_query_until('postgres', "SELECT count(*) = 1 FROM probe WHERE v = 'y'"),
	"'y' reached pgasyncslave");
kill 'STOP', $sender{pgasyncslave};
my $x = start_commit('x', \$xout, \$xerr);
ok($primary->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE wait_event = 'SyncRep'"),
	"'y' and 'x' wait for the synchronous standby");

# pgslave cannot re-point by itself from now on; its backends still answer.
kill 'STOP', $worker;
my @paused = freeze_node($primary);
my $new = wait_for_primary(120, $pgslave, $pgasync);
is($new ? $new->name : '', 'pgasyncslave', 'pgasyncslave, with the most WAL, is elected');

# pgmaster resumes, its WAL senders too.
thaw_node(@paused);
# (pump_nb dies on a client that has just ended: look before pumping.)
my $finished = wait_until(sub {
	for my $h ($x, $y) { eval { $h->pump_nb if $h->pumpable; 1 } }
	!$x->pumpable && !$y->pumpable;
}, 60);
ok(defined $finished, 'both clients got an answer or lost their connection');
my $x_acked = ($x->finish && $xout =~ /INSERT 0 1/);
my $y_acked = ($y->finish && $yout =~ /INSERT 0 1/);
kill 'CONT', $worker;

# The cluster settles: pgasyncslave is the only primary, the others follow it.
ok(wait_follows($pgslave, $new, 180), 'pgslave follows the new primary');
my $has = sub { $new->safe_psql('postgres', "SELECT count(*) FROM probe WHERE v = '$_[0]'") };
ok(!$x_acked || $has->('x') == 1, "'x' was not acknowledged, or it is on the new primary")
  or diag("x: stdout $xout stderr $xerr");
ok(!$y_acked || $has->('y') == 1, "'y' was not acknowledged, or it is on the new primary")
  or diag("y: stdout $yout stderr $yerr");
is($has->('before'), 1, 'the commit acknowledged before the pause is there');

done_testing();
