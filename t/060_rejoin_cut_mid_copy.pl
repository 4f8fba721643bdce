# A rewind whose connection to the source is cut while pg_rewind copies.
# pg_rewind reads the old primary's own WAL, from the last common
# checkpoint on, to find the blocks it changed after the histories parted;
# then, before it fetches anything, it empties every file it copies whole,
# those WAL segments among them.  A fault soak cut one such copy (the
# source's connection ended): every later try failed on the emptied
# segment ("read 0 of 8192"), and the node stayed half rewound until it was
# cloned afresh.  rk_rejoin now keeps that WAL in its work directory once the
# dry run got through, and puts it back before each new try.
#
# Here the source's backend that serves pg_rewind's fetch is terminated
# while it sends the files (a table the new primary wrote after the
# failover makes the copy long enough to catch): the next try must finish
# the rewind, and the node must stream from the new primary with what it
# had before the histories parted.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

# Which segments are kept: the name's last 16 digits of the segment that
# holds an LSN, for segment sizes from 1 MB to 1 GB.
my $bindir = `pg_config --bindir`;
chomp $bindir;
for my $case (
	[ '0/4000060', 16 << 20, 0, '0000000000000004' ],
	[ '1/FF000000', 16 << 20, 1, '0000000200000000' ],
	[ '0000000100000003', 1 << 30, 1, '0000000200000000' ],
	[ '7FFFFFFF/FFFFFFFF', 1 << 20, 0, '7FFFFFFF00000FFF' ],
	[ '0/0', 64 << 20, 0, '0000000000000000' ],
	[ '12/3/4', 16 << 20, 0, undef ])
{
	my ($lsn, $size, $plus, $want) = @$case;
	my $got = `bash -c 'source "\$1"; segment_of "\$2" "\$3" "\$4"' - '$bindir/rk_rejoin' '$lsn' $size $plus`;
	is($? == 0 ? $got : undef, $want, "segment_of $lsn, segment size $size, plus $plus");
}

my ($primary, $pgslave, $pgasync) = build_cluster();
my $new = fail_over_diverged($primary, $pgslave, $pgasync);
my $pgdata = $primary->data_dir;
my $work = "$pgdata.rk_rejoin";

# About 100 MB that pg_rewind copies whole: a new relation, rows under the
# TOAST threshold, so not compressed.
$new->safe_psql('postgres',
	'CREATE TABLE big AS SELECT g, repeat(md5(g::text), 28) AS v FROM generate_series(1, 100000) g');
$new->safe_psql('postgres', 'CHECKPOINT');

# The fence at start makes pgmaster a standby and its worker starts the
# rewind.  Few tries and short pauses: without the kept WAL each later try
# fails the same way, and the test should say so soon.
{
	local $ENV{RK_REWIND_TRIES} = 3;
	local $ENV{RK_REWIND_PAUSE_MAX} = 2;
	system("$bindir/pg_ctl", '-w', '-D', $pgdata, '-l', $primary->logfile,
		'-o', '--cluster-name=' . $primary->name, 'start');
}

# Terminate the backend that serves the fetch (its query reads the files in
# chunks) as soon as it runs: a loop in the source itself, which looks every
# millisecond.  Not the dry run's (it fetches too, and changes nothing): only
# once the work directory notes that the rewind begins.
my $notice;
$new->psql('postgres', qq{
SET rk.rewinding = '$work/rewinding';
SET rk.wal = '$pgdata.rk_rewinding/pg_wal';} . q{
DO $$
DECLARE
	deadline timestamptz := clock_timestamp() + interval '180 s';
	emptied bigint;
BEGIN
	WHILE clock_timestamp() < deadline LOOP
		PERFORM pg_stat_clear_snapshot();
		-- pg_rewind empties a file when it queues its copy, and fetches
		-- every thousand chunks: the batch that holds the WAL may come
		-- after others.  Cut once some of the node's WAL is empty.
		IF (pg_stat_file(current_setting('rk.rewinding'), true)).size IS NOT NULL THEN
			emptied := (SELECT count(*) FROM pg_ls_dir(current_setting('rk.wal'), true, false) f
						WHERE f ~ '^[0-9A-F]{24}$'
						  AND (pg_stat_file(current_setting('rk.wal') || '/' || f, true)).size = 0);
			IF emptied > 0 AND (SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE pid <> pg_backend_pid() AND state = 'active'
				  AND query LIKE '%pg_read_binary_file(path, begin, len, true)%') > 0 THEN
				RAISE NOTICE 'cut, % WAL segments emptied', emptied;
				RETURN;
			END IF;
		END IF;
		PERFORM pg_sleep(0.001);
	END LOOP;
END
$$}, stderr => \$notice);
like($notice, qr/NOTICE:  cut/, "the source's backend is terminated while pg_rewind fetches");
ok(($notice // '') =~ /cut, (\d+) WAL segments emptied/ && $1 > 0,
	"pg_rewind had emptied some of the node's WAL segments by then")
  or diag($notice);

ok(defined wait_until(sub { !-e $work && !rejoin_helper_running($pgdata) }, 180),
	'the rejoin finishes')
  or diag(-e "$work/run.log" ? slurp_file("$work/run.log") : 'no run.log');
$primary->_update_pid(system("$bindir/pg_ctl", '-D', $pgdata, 'status') == 0 ? 1 : -1);
my $log = slurp_file("$pgdata/replication_kit.rejoin.log");
like($log, qr/kept this node's WAL, segments [0-9A-F]{16} to [0-9A-F]{16}/, "the node's WAL was kept before the rewind");
like($log, qr/pg_rewind failed \(try 1 of 3/, 'the first try was cut off');
like($log, qr/pg_rewind done/, 'a later try finished the rewind')
  or diag($log);
unlike($log, qr/read 0 of/, 'no try found an emptied WAL segment');
ok(!-e "$pgdata/replication_kit.rejoin_failed", 'no clone is asked for');
ok(wait_follows($primary, $new, 180), 'pgmaster streams from ' . $new->name)
  or diag($log);
is($primary->safe_psql('postgres', "SELECT string_agg(v, ',' ORDER BY v) FROM probe"), 'before',
	'rewound: what only pgmaster had is gone, the rest is there');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM big'), '100000', 'with what the new primary wrote');
is($primary->safe_psql('postgres', 'SELECT node_name FROM rk_status() WHERE is_self'), 'pgmaster',
	'with its own configuration and name');

done_testing();
