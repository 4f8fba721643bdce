# A rejoin killed while pg_rewind copies, as in t/054, but the crash leaves
# no stand-in in the data directory's place (it fell between rk_rejoin's
# two renames, or the stand-in could not be made).  Started as a service
# manager would, the server finds no data directory and starts nothing,
# never the half rewound one.  The rejoin is finished by hand, with the
# command the README gives, and the node streams from the new primary with
# its own configuration.
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
my $hidden = "$pgdata.rk_rewinding";
# The fence at start makes pgmaster a standby, its worker starts the
# rewind, and the helper dies while pg_rewind copies.
my $bindir = kill_rejoin_mid_copy($primary);
ok(-d "$hidden/base" && -e "$pgdata/replication_kit.standin", 'the data directory is hidden, a stand-in in its place');
# The crash this test is about: no stand-in.
PostgreSQL::Test::Utils::system_or_bail('rm', '-rf', $pgdata);
ok(-z "$hidden/postgresql.conf" && !-e "$hidden/standby.signal", 'with its configuration emptied and no standby.signal');

# Started as a service manager would, it starts nothing.
my $log_offset = -s $primary->logfile;
system("$bindir/pg_ctl", '-w', '-t', '30', '-D', $pgdata, '-l', $primary->logfile, 'start');
ok(system("$bindir/pg_ctl", '-D', $pgdata, 'status') != 0, 'a start after the crash starts no server');
ok(!-e $pgdata || !-e "$pgdata/PG_VERSION", 'and leaves no data directory behind');
my ($ok) = psql_ok($primary, 'SELECT 1');
ok(!$ok, 'nothing answers on its port');
is($new->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'the new primary is still the primary');
rmdir $pgdata if -d $pgdata;

# Finished by hand: no server to wait for, the source kept in the work directory.
my $rc = system("$bindir/rk_rejoin", $pgdata, $bindir, '', '0', $primary->logfile);
is($rc >> 8, 0, "rk_rejoin PGDATA BINDIR '' 0 LOGFILE finishes the rejoin and starts the server")
  or diag(-e "$work/run.log" ? slurp_file("$work/run.log") : slurp_file("$pgdata/replication_kit.rejoin.log"));
$primary->_update_pid(1);
ok(!-e $hidden, 'the data directory is back in its place');
ok(wait_follows($primary, $new, 180), 'pgmaster streams from ' . $new->name)
  or diag(slurp_file("$pgdata/replication_kit.rejoin.log"));
is($primary->safe_psql('postgres', 'SELECT node_name FROM rk_status() WHERE is_self'), 'pgmaster',
	'with its own configuration and name');
is($primary->safe_psql('postgres', "SELECT string_agg(v, ',' ORDER BY v) FROM probe"), 'before',
	'rewound: what only pgmaster had is gone, the rest is there');
ok(!-e $work, 'the work directory is gone');
like(slurp_file("$pgdata/replication_kit.rejoin.log"), qr/resuming an interrupted rewind/,
	'the rejoin log tells the resumed rewind');
unlike(substr(slurp_file($primary->logfile), $log_offset), qr/database system is ready to accept connections/,
	'pgmaster never came up as a primary');

done_testing();
