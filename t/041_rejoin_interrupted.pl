# A rejoin that is killed half way, and a server started over it.  Once
# pg_rewind has run, the data directory holds the source's configuration
# and the kit's state file of the source (its name, its role as the
# elected primary), and no standby.signal: started as it is, the old
# primary came back as a writable primary under the new primary's name.
# Killed during the rewind, the directory would not start at all.  rk_rejoin
# now keeps the node's own files in PGDATA.rk_rejoin, with how far it got,
# until the node is whole; a server start that finds that directory starts
# a helper that finishes the rejoin, and does not start itself.
#
# Here the helper is killed twice (RK_REJOIN_TEST_KILL): once just before
# pg_rewind changes anything, and, in the run that finishes that rewind,
# once the rewind is done but before the node's files are back.  Each time
# the test starts the server, as an operator or a service manager would.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my $new = fail_over_diverged($primary, $pgslave, $pgasync);
my $pgdata = $primary->data_dir;
my $work = "$pgdata.rk_rejoin";
my $log_offset = -s $primary->logfile;

# pg_ctl start on pgmaster where the server is expected to exit at once
# (it hands over to rk_rejoin, or refuses to start).  pg_ctl calls that a
# failure, or, where the control file says "shut down in recovery" (18),
# "shut down because of recovery target settings" with status 0, on which
# PostgreSQL::Test::Cluster's start gives up the whole test.  Returns
# whether the server runs afterwards.
sub start_raw
{
	system('pg_ctl', '-w', '-D', $pgdata, '-l', $primary->logfile,
		'-o', '--cluster-name=' . $primary->name, 'start');
	return system('pg_ctl', '-D', $pgdata, 'status') == 0;
}

# Start pgmaster with the helper's kill point `$kill` (undef: none) and
# wait until the helper it runs is gone, leaving `$marker` behind.
sub start_and_wait
{
	my ($kill, $marker, $what) = @_;
	if (defined $kill) { $ENV{RK_REJOIN_TEST_KILL} = $kill; }
	else { delete $ENV{RK_REJOIN_TEST_KILL}; }
	start_raw();
	delete $ENV{RK_REJOIN_TEST_KILL};
	ok(defined wait_until(sub { -e "$work/$marker" && !rejoin_helper_running($pgdata) }, 120), $what)
	  or diag(-e "$work/run.log" ? slurp_file("$work/run.log") : 'no run.log');
	$primary->_update_pid(-1);
}

# 1. The fence at start makes pgmaster a standby, its worker starts the
# rewind, and the helper dies once it noted that the rewind begins.
start_and_wait('before_rewind', 'rewinding', 'the first helper dies as the rewind begins');
ok(-e "$work/files/replication_kit.state", "pgmaster's own state file waits beside the data directory");

# 2. Started again, the server hands over to a helper that finishes the
# rewind; that one dies before it puts pgmaster's files back.
start_and_wait('after_rewind', 'rewound', 'a start resumes the rewind, whose helper dies in its turn');
my $new_name = $new->name;
like(slurp_file("$pgdata/replication_kit.state"), qr/^node_name = \Q$new_name\E$/m,
	"the data directory holds the new primary's state file now");
ok(-e "$pgdata/standby.signal" && slurp_file("$pgdata/postgresql.conf") =~ /replication_kit/,
	'but standby.signal and its own postgresql.conf, put back before the directory was shown again');

# 3. Started once more, the server again hands over, and the helper puts
# pgmaster back together and starts it as pgslave's standby.
start_raw();
ok(wait_follows($primary, $new, 180), 'pgmaster is put back together and streams from pgslave')
  or diag(slurp_file("$pgdata/replication_kit.rejoin.log"));
$primary->_update_pid(1);
is($primary->safe_psql('postgres', 'SELECT node_name FROM rk_status() WHERE is_self'), 'pgmaster',
	'it is pgmaster again');
like(slurp_file("$pgdata/replication_kit.state"), qr/^node_name = pgmaster$/m, 'its own state file is back');
is($primary->safe_psql('postgres', "SELECT string_agg(v, ',' ORDER BY v) FROM probe"), 'before',
	'what only pgmaster had is gone, the rest is there');
ok(!-e $work, 'the work directory is gone');
ok(!-e "$pgdata/replication_kit.rejoin_failed", 'the rejoin is not marked failed');

my $log = substr(slurp_file($primary->logfile), $log_offset);
like($log, qr/the rejoin of this data directory was interrupted/, 'the server log says why a start did not start');
unlike($log, qr/ready to accept connections/, 'pgmaster never came up as a primary');
is($new->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'the new primary is still the primary');
my $rejoin_log = slurp_file("$pgdata/replication_kit.rejoin.log");
like($rejoin_log, qr/resuming an interrupted rewind/, 'the rejoin log tells the resumed rewind');
like($rejoin_log, qr/the rewind was done; putting this node's configuration back/,
	'and the last run, which only put the files back');

# A directory of that name that is not one the server can trust (here:
# open to others, as one another user made would be) is neither used nor
# ignored: the server does not start, and says why; its files never go
# into PGDATA.  Removed, the server starts as before.
mkdir $work or die;
chmod 0755, $work;
mkdir "$work/files" or die;
open my $planted, '>', "$work/files/postgresql.auto.conf" or die;
print $planted "archive_command = 'touch /tmp/rk_planted'\n";
close $planted;
$log_offset = -s $primary->logfile;
$primary->stop;
ok(!start_raw(), 'with a work directory open to others the server does not start');
like(substr(slurp_file($primary->logfile), $log_offset), qr/is not a rejoin's work directory that this server can trust/,
	'and says why');
unlike(slurp_file("$pgdata/postgresql.auto.conf"), qr/rk_planted/, 'nothing of it went into PGDATA');
system('rm', '-rf', $work) == 0 or die;
$primary->start;
ok(wait_follows($primary, $new, 60), 'removed, pgmaster starts and streams as before');

done_testing();
