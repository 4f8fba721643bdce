# The replication password is not a key to the cluster (issue: security,
# items 1, 7 and 9).  Whoever holds the streaming password (it is typed into
# every pg_basebackup) can stream WAL and do nothing else: the node-to-node
# functions and what pg_rewind reads belong to the nodes' own role, whose
# secret is random.  A new replication password reaches every node with the
# registry, failover and rewind keep working after it changed, and no
# server log or postgresql.auto.conf holds a password after a failover and a
# rejoin.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my @all = ($primary, $pgslave, $pgasync);
my $new_password = 'rk-rotated-pw';

# --- An attacker with the streaming password, from a registered node's address.
sub as_replicator
{
	my ($node, $sql) = @_;
	local $ENV{PGPASSWORD} = $REPL_PASSWORD;
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		connstr => 'host=127.0.0.1 port=' . $node->port . ' user=replicator dbname=postgres');
	return ($ret, $err);
}
my $term = $primary->safe_psql('postgres', 'SELECT term FROM rk_cluster');
my %attacks = (
	'a fake primary contact' => [$pgslave, "SELECT * FROM rk_peer_state('pgmaster', $term, true)"],
	'a term from nowhere' => [$primary, "SELECT * FROM rk_peer_state('pgslave', 99, false)"],
	'a forced vote' => [$pgasync, "SELECT * FROM rk_request_vote('pgslave', 99, 1, 'FF/0', 'force')"],
	'a fence of the primary' => [$primary, "SELECT * FROM rk_peer_fence('pgslave', 99, false)"],
	'a forced promotion' => [$pgslave, "SELECT * FROM rk_peer_failover(true, false, false)"],
	'a planted node secret' => [$pgslave, "SELECT rk_peer_secret(repeat('ab', 32))"],
	'a read of the primary\'s files' => [$primary, "SELECT pg_read_binary_file('global/pg_control')"]);
for my $what (sort keys %attacks)
{
	my ($node, $sql) = @{ $attacks{$what} };
	my ($ret, $err) = as_replicator($node, $sql);
	isnt($ret, 0, "with the streaming password: $what is refused");
	like($err, qr/permission denied/, "... as a permission error ($what)");
}
is($primary->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'pgmaster is still the primary');
is($primary->safe_psql('postgres', 'SELECT term FROM rk_cluster'), $term, 'in the same term');
$primary->safe_psql('postgres', 'CREATE TABLE after_attack (v int); INSERT INTO after_attack VALUES (1)');
pass('and it still commits (synchronously)');
is($pgslave->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'pgslave is still a standby');

# The clone's primary_conninfo (pg_basebackup -R) had the password; the kit drops it.
for my $n ($pgslave, $pgasync)
{
	ok(defined wait_until(sub { slurp_file($n->data_dir . '/postgresql.auto.conf') !~ /password/ }, 30),
		'the password leaves primary_conninfo of ' . $n->name);
}

# --- The node secret: on every node, in no base backup, no table, no WAL.
my $node_file = 'pgsql_tmp.replication_kit.node_pgpass';
my $node_line = qr/^\*:\*:\*:replication_kit_node:([0-9a-f]{64})$/m;
my ($secret) = slurp_file($primary->data_dir . "/$node_file") =~ $node_line;
ok(defined $secret, 'the primary keeps the node role\'s secret in a file of its own');
for my $n ($pgslave, $pgasync)
{
	# A clone does not get it from pg_basebackup: a node that has it hands it over.
	ok(defined wait_until(sub { -f $n->data_dir . "/$node_file"
		  && (slurp_file($n->data_dir . "/$node_file") =~ $node_line)[0] eq $secret }, 60),
		$n->name . ' was given the node secret by another node');
	my $mode = (stat($n->data_dir . "/$node_file"))[2] & 07777;
	is(sprintf('%o', $mode), '600', '... readable by the server user only');
	like(slurp_file($n->logfile), qr/received the node role's secret from another node/, '... and says so');
}
{
	# What the streaming password can copy: a base backup with its WAL.
	my $copy = PostgreSQL::Test::Utils::tempdir . '/copy';
	local $ENV{PGPASSWORD} = $REPL_PASSWORD;
	system('pg_basebackup', '-D', $copy, '-X', 'stream', '-c', 'fast',
		'-d', 'host=127.0.0.1 port=' . $primary->port . ' user=replicator') == 0
	  or die 'pg_basebackup as the replication role failed';
	ok(!-e "$copy/$node_file", 'a base backup taken with the streaming password has no node secret file');
	my $found = `grep -rl -F '$secret' '$copy' 2>/dev/null`;
	is($found, '', 'and the secret is in none of its files, WAL included');
	is($primary->safe_psql('postgres', "SELECT count(*) FROM rk_credentials WHERE role = 'replication_kit_node'"),
		'0', 'nor in rk_credentials');
}

# --- Rotate the replication password: every node's password file follows.
$primary->safe_psql('postgres',
	"SET log_statement = none; SELECT rk_create_replicator('replicator', '$new_password')");
is((slurp_file($primary->data_dir . "/$node_file") =~ $node_line)[0], $secret,
	'a new replication password keeps the node secret');
for my $n ($pgslave, $pgasync)
{
	ok(defined wait_until(sub { slurp_file($n->data_dir . '/replication_kit.pgpass') =~ /^\*:\*:\*:replicator:\Q$new_password\E$/m }, 30),
		'the new replication password reaches the password file of ' . $n->name);
	my $mode = (stat($n->data_dir . '/replication_kit.pgpass'))[2] & 07777;
	is(sprintf('%o', $mode), '600', '... readable by the server user only');
}
# A physical replication connection (the kit's scram-sha-256 line) with each password.
sub replication_login
{
	my ($node, $password) = @_;
	local $ENV{PGPASSWORD} = $password;
	my ($ret) = $node->psql('postgres', 'IDENTIFY_SYSTEM',
		connstr => 'host=127.0.0.1 port=' . $node->port . ' user=replicator dbname=postgres replication=true');
	return $ret == 0;
}
ok(!replication_login($primary, $REPL_PASSWORD), 'the old replication password no longer logs in');
ok(replication_login($primary, $new_password), 'the new one does');

# Reconnect both standbys: they stream with the new password from the file.
$_->safe_psql('postgres', 'SELECT pg_terminate_backend(pid) FROM pg_stat_wal_receiver') for ($pgslave, $pgasync);
wait_for_sync_state($primary, pgslave => 'sync', pgasyncslave => 'potential');
pass('both standbys stream again with the new password');

# --- A failover with a diverged old primary: votes, promotion and the rewind
# all go through the node role.
my $new = fail_over_diverged($primary, $pgslave, $pgasync);
$primary->start(fail_ok => 1);
ok(wait_follows($primary, $new, 180), 'the old primary is rewound (as the node role) and streams from pgslave');
is($primary->safe_psql('postgres', "SELECT count(*) FROM probe WHERE v = 'diverged'"), '0',
	'its diverged commit was rewound away');

# --- No password in any log or configuration file, after all of that.
for my $n (@all)
{
	my $log = slurp_file($n->logfile);
	for my $pw ($REPL_PASSWORD, $new_password)
	{
		unlike($log, qr/\Q$pw\E/, 'no replication password in the log of ' . $n->name);
	}
	unlike(slurp_file($n->data_dir . '/postgresql.auto.conf'), qr/password/,
		'no password in postgresql.auto.conf of ' . $n->name);
	unlike($log, qr/\Q$secret\E/, 'no node secret in the log of ' . $n->name);
}

$_->stop('immediate', fail_ok => 1) for @all;
done_testing();
