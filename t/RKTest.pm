# RKTest.pm: the walkthrough's topology built with replication_kit, for the
# TAP tests.  A primary (pgmaster) and standbys (pgslave, pgasyncslave) on
# loopback TCP, set up with the kit's SQL calls only and cloned with the
# exact command rk_add_standby() returns.
package RKTest;

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IPC::Run;

use Exporter 'import';
our @EXPORT = qw(start_setup_primary new_kit_node setup_primary clone_standby build_cluster
  build_cluster_async kit_settings wait_for_sync_state status_of wait_until psql_ok
  write_connstr start_writer stop_writer acked_missing wait_for_primary wait_for_kit_primary
  freeze_node thaw_node node_pids reclone run_clone_command kill9 poll_ok wait_follows
  partition fail_over_diverged diverge_and_kill cut_off_committing $REPL_PASSWORD
  rejoin_helper_running kill_rejoin_mid_copy);

our $REPL_PASSWORD = 'rk-secret-pw';

# Settings every kit node gets; a test may pass more (timing knobs).
sub kit_settings
{
	my (%extra) = @_;
	my %conf = (
		shared_preload_libraries => "'replication_kit'",
		listen_addresses => "'127.0.0.1'",
		restart_after_crash => 'on',
		wal_receiver_status_interval => "'1s'",
		wal_retrieve_retry_interval => "'500ms'",
		'replication_kit.probe_interval' => "'500ms'",
		'replication_kit.probe_timeout' => "'1s'",
		'replication_kit.failover_timeout' => "'3s'",
		'replication_kit.fence_timeout' => "'2s'",
		%extra);
	return join('', map { "$_ = $conf{$_}\n" } sort keys %conf);
}

# A fresh primary-to-be with the kit preloaded.
sub new_kit_node
{
	my ($name, %extra) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 1);
	$node->append_conf('postgresql.conf', kit_settings(%extra));
	return $node;
}

# Start the primary-to-be, CREATE EXTENSION and rk_setup_primary (with
# the restart it may ask for): steps 4 and 6.
sub start_setup_primary
{
	my ($primary) = @_;
	my $port = $primary->port;
	$primary->start;
	$primary->safe_psql('postgres', 'CREATE EXTENSION replication_kit');
	my $rows = $primary->safe_psql('postgres',
		"SELECT setting, needs_restart FROM rk_setup_primary('pgmaster', '127.0.0.1', $port)");
	$primary->restart if $rows =~ /\|t/;
	return;
}

# The walkthrough's steps 4-7 and 14's registry part, exactly as a DBA types them.
sub setup_primary
{
	my ($primary, @standbys) = @_;
	start_setup_primary($primary);
	# No statement logging while the password is on the command line.
	$primary->safe_psql('postgres',
		"SET log_statement = none; SELECT rk_create_replicator('replicator', '$REPL_PASSWORD')");
	$primary->safe_psql('postgres', "SELECT rk_allow_replication('127.0.0.1/32')");
	return;
}

# Register a standby and clone it with the command the kit hands out.
sub clone_standby
{
	my ($primary, $name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	my $sync = defined $opts{sync} ? ($opts{sync} ? 'true' : 'false') : 'true';
	my $cmd = $primary->safe_psql('postgres',
		"SELECT rk_add_standby('$name', '127.0.0.1', " . $node->port . ", sync => $sync)");
	like($cmd, qr/^pg_basebackup .*--slot=$name .*application_name=$name/,
		"rk_add_standby returns the clone command for $name");
	run_clone_command($node, $cmd);
	$node->start unless $opts{no_start};
	return $node;
}

# Run a clone command the kit handed out, as a DBA would: PGDATA set to the
# node's data directory, the replication password in PGPASSWORD.
sub run_clone_command
{
	my ($node, $cmd) = @_;
	local $ENV{PGDATA} = $node->data_dir;
	local $ENV{PGPASSWORD} = $REPL_PASSWORD;
	local $ENV{PGHOST};
	local $ENV{PGPORT};
	system('sh', '-c', $cmd) == 0 or die 'clone command failed for ' . $node->name . ": $cmd";
	# The clone carries the primary's postgresql.conf; it gets its own port.
	$node->append_conf('postgresql.conf', "port = " . $node->port . "\n");
	return;
}

# pgmaster with pgslave and pgasyncslave under FIRST 1, all streaming.
sub build_cluster
{
	my (%extra) = @_;
	my $primary = new_kit_node('pgmaster', %extra);
	setup_primary($primary);
	my $s1 = clone_standby($primary, 'pgslave');
	my $s2 = clone_standby($primary, 'pgasyncslave');
	$primary->safe_psql('postgres', "SELECT rk_set_sync('FIRST', 1)");
	wait_for_sync_state($primary, pgslave => 'sync', pgasyncslave => 'potential');
	return ($primary, $s1, $s2);
}

# The same three nodes with pgasyncslave outside the synchronous list
# (rk_add_standby(..., sync => false)): the synchronous quorum is pgslave
# alone, so a test can take pgasyncslave away without blocking elections.
sub build_cluster_async
{
	my (%extra) = @_;
	my $primary = new_kit_node('pgmaster', %extra);
	setup_primary($primary);
	my $s1 = clone_standby($primary, 'pgslave');
	my $s2 = clone_standby($primary, 'pgasyncslave', sync => 0);
	$primary->safe_psql('postgres', "SELECT rk_set_sync('FIRST', 1)");
	wait_for_sync_state($primary, pgslave => 'sync', pgasyncslave => 'async');
	return ($primary, $s1, $s2);
}

# The libpq multi-host string an application uses to find the primary.
sub write_connstr
{
	my (@nodes) = @_;
	return 'host=' . join(',', map { '127.0.0.1' } @nodes)
	  . ' port=' . join(',', map { $_->port } @nodes)
	  . ' dbname=postgres target_session_attrs=read-write connect_timeout=2';
}

# A client committing one row per transaction through the multi-host string,
# recording every commit it saw acknowledged.  Runs until stop_writer.
sub start_writer
{
	my ($connstr, $dir, $table) = @_;
	$table //= 'writes';
	my $acked = "$dir/acked_$table";
	unlink $acked;
	my $script = <<"EOS";
i=0
while [ ! -f '$dir/stop_$table' ]; do
  i=\$((i+1))
  # A client with a deadline: a hung server must not hang the client forever.
  if timeout 5 psql -X -q -d "$connstr" -c "INSERT INTO $table VALUES (\$i, clock_timestamp())" >/dev/null 2>&1; then
    echo \$i >> '$acked'
  else
    sleep 0.05
  fi
done
EOS
	unlink "$dir/stop_$table";
	my $h = IPC::Run::start(['bash', '-c', $script]);
	return { handle => $h, acked => $acked, stop => "$dir/stop_$table" };
}

# Stop the writer; returns the list of acknowledged ids.
sub stop_writer
{
	my ($w) = @_;
	open my $fh, '>', $w->{stop};
	close $fh;
	$w->{handle}->finish;
	open my $in, '<', $w->{acked} or return ();
	my @ids = map { chomp; $_ } <$in>;
	close $in;
	return @ids;
}

# Acknowledged ids missing from a node's table.
sub acked_missing
{
	my ($node, $table, @ids) = @_;
	return () unless @ids;
	my $have = $node->safe_psql('postgres', "SELECT string_agg(id::text, ',') FROM $table");
	my %have = map { $_ => 1 } split /,/, ($have // '');
	return grep { !$have{$_} } @ids;
}

# poll_query_until for a node the kit may be restarting under our feet.
sub poll_ok
{
	my ($node, $sql, $timeout) = @_;
	return defined wait_until(sub {
		my ($ok, $out) = psql_ok($node, $sql);
		$ok && $out eq 't';
	}, $timeout // 120);
}

# Wait until `node` really follows `primary`: it streams from it and has
# replayed a row written there just now.  (A standby whose WAL diverged
# shows "streaming" for moments while it fails to follow.)
sub wait_follows
{
	my ($node, $primary, $timeout) = @_;
	my $tag = int(rand(1_000_000_000));
	# A primary that just started (or took over) commits once its lease is granted.
	wait_until(sub {
		(psql_ok($primary,
			"SET synchronous_commit = local; CREATE TABLE IF NOT EXISTS rk_follow_marker (tag bigint); "
			  . "INSERT INTO rk_follow_marker VALUES ($tag)"))[0];
	}, $timeout // 120) or return 0;
	return poll_ok($node,
		"SELECT EXISTS (SELECT 1 FROM rk_follow_marker WHERE tag = $tag) AND EXISTS "
		  . "(SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_port = "
		  . $primary->port . ")", $timeout);
}

# Wait until exactly one of the nodes is a primary; returns it.
sub wait_for_primary
{
	my ($timeout, @nodes) = @_;
	my $found;
	wait_until(sub {
		my @p = grep {
			my ($ok, $out) = psql_ok($_, 'SELECT pg_is_in_recovery()');
			$ok && $out eq 'f';
		} @nodes;
		$found = $p[0] if @p == 1;
		return @p == 1;
	}, $timeout);
	return $found;
}

# Wait until one of `nodes` is out of recovery and its worker is the
# primary (a fenced old primary is out of recovery too, but is not);
# returns it, or undef after `timeout` seconds.
sub wait_for_kit_primary
{
	my ($timeout, @nodes) = @_;
	my $found;
	wait_until(sub {
		($found) = grep {
			my ($ok, $out) = psql_ok($_,
				"SELECT NOT pg_is_in_recovery() AND worker_state = 'primary' FROM rk_local_node()");
			$ok && $out eq 't';
		} @nodes;
		return defined $found;
	}, $timeout);
	return $found;
}

# replication_kit.simulate_partition on one node: the node names it behaves
# as cut off from (undef: none).  Set it on both sides of a cut.
#
# A node the kit restarts just then (a rejoin that began when another side
# healed) is asked again until it answers; each refusal is shown, so that a
# node that went away unexpectedly is in the test's output.
sub partition
{
	my ($node, $peers) = @_;
	my $sql = ($peers ? "ALTER SYSTEM SET replication_kit.simulate_partition = '$peers'"
		  : 'ALTER SYSTEM RESET replication_kit.simulate_partition');
	my $err = '';
	my $done = wait_until(sub {
		my ($ok, $out, $e) = psql_ok($node, $sql);
		($ok, $out, $e) = psql_ok($node, 'SELECT pg_reload_conf()') if $ok;
		diag($node->name . ": $e") if !$ok;
		$err = $e;
		$ok;
	}, 60);
	die $node->name . ": simulate_partition could not be set: $err" unless defined $done;
	return;
}

# Cut `primary` off from both standbys while one session on it commits
# with synchronous_commit = local into local_writes, a row every 10 ms
# stamped with the server's clock, until a commit is refused.  Returns the
# time of the cut, the refusal's error text, and the epoch of the last row
# the primary kept.
sub cut_off_committing
{
	my ($primary, $pgslave, $pgasync) = @_;
	my $cut_at = time;
	partition($_, 'pgmaster') for ($pgslave, $pgasync);
	partition($primary, 'pgslave,pgasyncslave');
	my $log_offset = -s $primary->logfile;
	my ($ok, $out, $err) = psql_ok($primary,
		'SET synchronous_commit = local; DO $$ BEGIN LOOP '
		  . 'INSERT INTO local_writes (at) VALUES (clock_timestamp()); COMMIT; PERFORM pg_sleep(0.01); '
		  . 'END LOOP; END $$', timeout => 120);
	# The lease may run out while a commit is under way, after its check at
	# PRE_COMMIT: the guard then closes the session rather than acknowledge
	# it, and says why in the server log only.
	if ($err =~ /server closed the connection/
		&& substr(slurp_file($primary->logfile), $log_offset) =~
		/(the commit at \S+ is not acknowledged: this primary lost its lease[^\n]*)/)
	{
		$err = $1;
	}
	my $last = $primary->safe_psql('postgres', 'SELECT extract(epoch FROM max(at)) FROM local_writes');
	return ($cut_at, $err, $last);
}

# Give `primary` WAL that no standby has, then kill it: its WAL senders are
# stopped once every standby holds all its WAL (and the same WAL: otherwise
# the one that happened to get a last record, a checkpoint's or a running
# transactions snapshot, is the most advanced and rightly wins; equal, the
# synchronous one is promoted), and `sql` commits locally.  With `sql`
# undef, the primary dies with the standbys' WAL: it needs no rewind.
sub diverge_and_kill
{
	my ($primary, $sql, @standbys) = @_;
	my @senders;
	for (my $try = 0;; $try++)
	{
		die 'the standbys never caught up with the same WAL' if $try == 20;
		my $flushed = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
		$_->poll_query_until('postgres', "SELECT pg_last_wal_receive_lsn() >= '$flushed'") or die for @standbys;
		@senders = split /\n/, $primary->safe_psql('postgres', 'SELECT pid FROM pg_stat_replication');
		kill 'STOP', @senders;
		my $now = $primary->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
		my @got = map { $_->safe_psql('postgres', 'SELECT pg_last_wal_receive_lsn()') } @standbys;
		last if !grep { $_ ne $now } @got;
		kill 'CONT', @senders;
	}
	$primary->safe_psql('postgres', "SET synchronous_commit = local; $sql") if defined $sql;
	kill9($primary);
	return;
}

# A table `probe` with the row 'before' on every node; then a row
# 'diverged' that only the primary has (its WAL senders frozen, the commit
# local), the primary killed, and the failover to pgslave, which
# pgasyncslave follows.  Returns the new primary.
sub fail_over_diverged
{
	my ($primary, $pgslave, $pgasync) = @_;
	$primary->safe_psql('postgres', 'CREATE TABLE probe (v text)');
	$primary->safe_psql('postgres', "INSERT INTO probe VALUES ('before')");
	$_->poll_query_until('postgres', "SELECT count(*) = 1 FROM probe") or die for ($pgslave, $pgasync);
	diverge_and_kill($primary, "INSERT INTO probe VALUES ('diverged')", $pgslave, $pgasync);
	# With equal WAL either may win (the synchronous one usually does, on
	# the tie-break); what follows does not depend on which.
	my $new = wait_for_primary(120, $pgslave, $pgasync);
	ok($new, 'a standby is promoted (' . ($new ? $new->name : 'none') . ')');
	my $other = $new && $new == $pgasync ? $pgslave : $pgasync;
	ok($new && wait_follows($other, $new, 120), 'the other standby follows it');
	return $new;
}

# Is an rk_rejoin at work on the data directory `pgdata`?
sub rejoin_helper_running
{
	my ($pgdata) = @_;
	open my $pg, '-|', 'pgrep', '-f', "rk_rejoin $pgdata " or die "pgrep: $!";
	my @pids = grep { /\d/ } <$pg>;
	close $pg;
	return scalar @pids;
}

# Start the old primary `node` (after fail_over_diverged) so that the fence
# at start makes it a standby and its worker starts the rewind, with the
# helper's kill point mid_rewind: the helper dies while pg_rewind copies,
# leaving the directory hidden.  Returns the binaries' directory.
sub kill_rejoin_mid_copy
{
	my ($node) = @_;
	my $pgdata = $node->data_dir;
	my $bindir = `pg_config --bindir`;	# the binaries the tests run, beside rk_rejoin
	chomp $bindir;
	local $ENV{RK_REJOIN_TEST_KILL} = 'mid_rewind';
	system("$bindir/pg_ctl", '-w', '-D', $pgdata, '-l', $node->logfile, '-o', '--cluster-name=' . $node->name, 'start');
	Test::More::ok(defined wait_until(sub { -d "$pgdata.rk_rewinding" && !rejoin_helper_running($pgdata) }, 120),
		'the helper dies while pg_rewind copies')
	  or Test::More::diag(-e "$pgdata.rk_rejoin/run.log" ? PostgreSQL::Test::Utils::slurp_file("$pgdata.rk_rejoin/run.log") : 'no run.log');
	$node->_update_pid(-1);
	return $bindir;
}

# The postmaster and all its children.
sub node_pids
{
	my ($node) = @_;
	open my $f, '<', $node->data_dir . '/postmaster.pid' or die "no postmaster.pid for " . $node->name;
	my $pm = <$f>;
	chomp $pm;
	close $f;
	my @kids = split /\s+/, `pgrep -P $pm`;
	return grep { /\d/ } ($pm, @kids);
}

# kill -9 a whole server, and tell the test framework it is gone.
sub kill9
{
	my ($node) = @_;
	my @pids = node_pids($node);
	kill 'KILL', @pids;
	wait_until(sub { kill(0, $pids[0]) == 0 }, 10);
	$node->_update_pid(-1);
	return;
}

# SIGSTOP a whole server: it hangs with its sockets open.  The postmaster
# first, so that it forks no child after the children were listed (a WAL
# sender reconnecting, a backend for a probe), then its children, twice.
sub freeze_node
{
	my ($node) = @_;
	my ($pm, @kids) = node_pids($node);
	kill 'STOP', $pm;
	my %stopped = ($pm => 1);
	for (1 .. 2)
	{
		my @now = grep { /\d/ && !$stopped{$_} } split /\s+/, `pgrep -P $pm`;
		kill 'STOP', @now;
		$stopped{$_} = 1 for @now;
	}
	return ($pm, grep { $_ != $pm } keys %stopped);
}

sub thaw_node
{
	my (@pids) = @_;
	kill 'CONT', @pids;
}

# Bring a node back as a fresh standby of `primary` by hand: a new clone
# through its existing slot.
sub reclone
{
	my ($primary, $node) = @_;
	my $name = $node->name;
	$node->stop('immediate', fail_ok => 1);
	PostgreSQL::Test::Utils::system_or_bail('rm', '-rf', $node->data_dir);
	local $ENV{PGPASSWORD} = $REPL_PASSWORD;
	my $slot = $primary->safe_psql('postgres',
		"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$name'") ? "--slot=$name" : '';
	PostgreSQL::Test::Utils::system_or_bail('pg_basebackup', '--pgdata=' . $node->data_dir,
		'--wal-method=stream', '--write-recovery-conf', '--checkpoint=fast', ($slot ? $slot : ()),
		'--dbname=host=127.0.0.1 port=' . $primary->port . " user=replicator application_name=$name");
	$node->append_conf('postgresql.conf', "port = " . $node->port . "\n");
	$node->start;
	return;
}

# Poll pg_stat_replication until every named standby has the given sync_state.
sub wait_for_sync_state
{
	my ($primary, %want) = @_;
	my $cond = join(' AND ', map {
		"EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = '$_' "
		  . "AND state = 'streaming' AND sync_state = '$want{$_}')"
	} sort keys %want);
	$primary->poll_query_until('postgres', "SELECT $cond")
	  or die "timed out waiting for sync states " . join(', ', %want);
	return;
}

# rk_status() rows as "name|role" lines, sorted, as seen from one node.
sub status_of
{
	my ($node, $cols) = @_;
	$cols //= 'node_name, role';
	return $node->safe_psql('postgres', "SELECT $cols FROM rk_status() ORDER BY node_name");
}

# Poll a Perl condition (with a generous deadline), return elapsed seconds or undef.
sub wait_until
{
	my ($cond, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $start = time;
	while (time - $start < $timeout)
	{
		return time - $start if $cond->();
		usleep(100_000);
	}
	return undef;
}

# psql that returns (ok, stdout, stderr) without dying.
# A node the kit is restarting may vanish in the middle: that is a failure,
# not a reason for the test to die.
sub psql_ok
{
	my ($node, $sql, %opts) = @_;
	my ($stdout, $stderr);
	my $ret = eval {
		$node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr,
			on_error_stop => 1, %opts);
	};
	return (0, '', $@ || 'psql failed') unless defined $ret;
	return ($ret == 0, $stdout // '', $stderr // '');
}

# At exit, stop every node whatever happened to it: the kit restarts old
# primaries by itself (new postmaster PIDs), and a test that died in the
# middle must not leave servers behind for the next one.
END
{
	my $exit = $?;
	for my $node (@PostgreSQL::Test::Cluster::all_nodes)
	{
		# A rejoin in flight would start the server again after we stop it.
		system('pkill', '-f', 'rk_rejoin ' . $node->data_dir);
		my $pidfile = $node->data_dir . '/postmaster.pid';
		if (open my $f, '<', $pidfile)
		{
			my $pid = <$f>;
			close $f;
			chomp $pid;
			if ($pid && kill(0, $pid))
			{
				system('pg_ctl', '-D', $node->data_dir, '-m', 'immediate', 'stop');
				wait_until(sub { kill(0, $pid) == 0 }, 10);
			}
		}
		$node->{_pid} = undef;
	}
	$? = $exit;
}

1;
