# A rejoin killed while pg_rewind copies, on a node whose configuration
# lives in PGDATA.  pg_rewind empties postgresql.conf and
# postgresql.auto.conf when it begins to copy (it fills them at its end) and
# removes standby.signal, postmaster.pid and backup_label.  Started then, as
# a service manager would after a crash, the server loaded no kit, so
# nothing stopped it: a fault soak saw it run recovery on the half rewound
# directory ("could not access status of transaction"); with WAL that
# replays it comes up as a writable primary without the kit's guard.  Now
# rk_rejoin hides the data directory (PGDATA.rk_rewinding) while pg_rewind
# runs, and puts a stand-in in its place: the node's own configuration,
# PG_VERSION and pg_control, no WAL and no data.  Such a start loads the
# kit from the stand-in's configuration, which hands over to a new
# rk_rejoin: it finishes the rewind and starts the node as a standby that
# streams from the new primary with its own configuration, with no
# command from anyone (the soak's restarts converge).  t/055 covers a
# crash that leaves no stand-in (the command the README gives).
#
# The kill point (RK_REJOIN_TEST_KILL=mid_rewind) leaves the directory as
# pg_rewind leaves it mid-copy: its configuration emptied and those files
# removed, its data not yet changed (with WAL that replays, the worst case).
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
ok(-d "$hidden/base", 'the data directory is hidden');
ok(-z "$hidden/postgresql.conf" && !-e "$hidden/standby.signal", 'with its configuration emptied and no standby.signal');

ok(-e "$pgdata/replication_kit.standin" && !-e "$pgdata/base" && !-e "$pgdata/pg_wal",
	'a stand-in without data or WAL holds its place');
like(slurp_file("$pgdata/postgresql.conf"), qr/replication_kit/, 'with its own configuration, which loads the kit');

# Started as a service manager would: the start hands over to rk_rejoin.
my $log_offset = -s $primary->logfile;
system("$bindir/pg_ctl", '-w', '-t', '30', '-D', $pgdata, '-l', $primary->logfile, 'start');
ok(defined wait_until(sub { slurp_file($primary->logfile) =~ /rejoin of this data directory was interrupted; rk_rejoin finishes it/ }, 60),
	'the start on the stand-in hands over to rk_rejoin');
is($new->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'the new primary is still the primary');
ok(defined wait_until(sub { system("$bindir/pg_ctl", '-D', $pgdata, 'status') == 0 && !rejoin_helper_running($pgdata) }, 180),
	'rk_rejoin finishes the rewind and starts the server')
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
