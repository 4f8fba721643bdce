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

use Exporter 'import';
our @EXPORT = qw(new_kit_node setup_primary clone_standby build_cluster
  kit_settings wait_for_sync_state status_of wait_until psql_ok
  $REPL_PASSWORD);

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
		'replication_kit.probe_interval' => "'500ms'",
		'replication_kit.probe_timeout' => "'1s'",
		'replication_kit.failover_timeout' => "'4s'",
		'replication_kit.fence_timeout' => "'3s'",
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

# The walkthrough's steps 4-7 and 14's registry part, exactly as a DBA types them.
sub setup_primary
{
	my ($primary, @standbys) = @_;
	my $port = $primary->port;
	$primary->start;
	$primary->safe_psql('postgres', 'CREATE EXTENSION replication_kit');
	my $rows = $primary->safe_psql('postgres',
		"SELECT setting, needs_restart FROM rk_setup_primary('pgmaster', '127.0.0.1', $port)");
	$primary->restart if $rows =~ /\|t/;
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
	local $ENV{PGDATA} = $node->data_dir;
	local $ENV{PGPASSWORD} = $REPL_PASSWORD;
	local $ENV{PGHOST};
	local $ENV{PGPORT};
	system('sh', '-c', $cmd) == 0 or die "clone command failed for $name: $cmd";
	# The clone carries the primary's postgresql.conf; it gets its own port.
	$node->append_conf('postgresql.conf', "port = " . $node->port . "\n");
	$node->start unless $opts{no_start};
	return $node;
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
sub psql_ok
{
	my ($node, $sql, %opts) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr,
		on_error_stop => 1, %opts);
	return ($ret == 0, $stdout // '', $stderr // '');
}

1;
