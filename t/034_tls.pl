# TLS for the kit's own connections (issue: security, item 3).  Every node
# has a server certificate signed by a CA made here; the kit's connections
# (node-to-node calls, WAL streaming, the clone command, pg_rewind) use
# replication_kit.sslmode = verify-full against that CA and
# channel_binding = require, and every node refuses TCP connections without
# TLS.  A failover and a rejoin work that way; the connections are seen
# encrypted; and a node that trusts another CA cannot talk to the others.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my $dir = PostgreSQL::Test::Utils::tempdir;
# A CA, and a certificate for 127.0.0.1 signed by it; and an unrelated CA.
for my $ca ('ca', 'other_ca')
{
	system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', "/CN=$ca",
		'-keyout', "$dir/$ca.key", '-out', "$dir/$ca.crt") == 0 or die "cannot make $ca";
}
system('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
	'-keyout', "$dir/server.key", '-out', "$dir/server.csr") == 0 or die 'cannot make a request';
open my $ext, '>', "$dir/san.ext" or die;
print $ext "subjectAltName = IP:127.0.0.1\n";
close $ext;
system('openssl', 'x509', '-req', '-in', "$dir/server.csr", '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key",
	'-CAcreateserial', '-days', '2', '-extfile', "$dir/san.ext", '-out', "$dir/server.crt") == 0
  or die 'cannot sign the server certificate';
chmod 0600, "$dir/server.key";

my ($primary, $pgslave, $pgasync) = build_cluster(
	ssl => 'on',
	ssl_cert_file => "'$dir/server.crt'",
	ssl_key_file => "'$dir/server.key'",
	'replication_kit.sslmode' => "'verify-full'",
	'replication_kit.sslrootcert' => "'$dir/ca.crt'",
	'replication_kit.channel_binding' => "'require'");
my @all = ($primary, $pgslave, $pgasync);

like($primary->safe_psql('postgres', "SELECT rk_add_standby('later', '127.0.0.2', 5432, sync => false)"),
	qr/sslmode=verify-full sslrootcert=\S+ca\.crt channel_binding=require/,
	'the clone command carries the TLS settings');
$primary->safe_psql('postgres', "SELECT rk_remove_standby('later')");

# From now on, no node takes a TCP connection without TLS.
for my $n (@all)
{
	my $hba = slurp_file($n->data_dir . '/pg_hba.conf');
	open my $f, '>', $n->data_dir . '/pg_hba.conf' or die;
	print $f "hostnossl all all 0.0.0.0/0 reject\nhostnossl replication all 0.0.0.0/0 reject\n$hba";
	close $f;
	$n->safe_psql('postgres', 'SELECT pg_reload_conf()');
}
for my $n ($pgslave, $pgasync)
{
	$n->safe_psql('postgres', 'SELECT pg_terminate_backend(pid) FROM pg_stat_wal_receiver');
}
wait_for_sync_state($primary, pgslave => 'sync', pgasyncslave => 'potential');
is($primary->safe_psql('postgres',
	'SELECT count(*) FILTER (WHERE s.ssl) || \'/\' || count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)'),
	'2/2', 'both standbys stream over TLS');
ok(poll_ok($primary, "SELECT count(*) > 0 AND bool_and(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
	  . "WHERE a.usename = 'replication_kit_node'", 60),
	'the other nodes call the primary over TLS');

# A failover and a rejoin with diverged WAL, all over TLS.
my $new = fail_over_diverged($primary, $pgslave, $pgasync);
$primary->start(fail_ok => 1);
ok(wait_follows($primary, $new, 180), 'the old primary is rewound over TLS and streams from pgslave');

# A node that trusts another CA cannot verify the others' certificates.
$pgasync->safe_psql('postgres', "ALTER SYSTEM SET replication_kit.sslrootcert = '$dir/other_ca.crt'");
$pgasync->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok(poll_ok($pgasync, "SELECT bool_and(error LIKE '%certificate%') FROM rk_peer_view() WHERE NOT is_self", 60),
	'with another CA, pgasyncslave cannot verify the other nodes')
  or diag($pgasync->safe_psql('postgres', 'SELECT node_name, error FROM rk_peer_view()'));
$pgasync->safe_psql('postgres', 'ALTER SYSTEM RESET replication_kit.sslrootcert');
$pgasync->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok(poll_ok($pgasync, "SELECT bool_and(error IS NULL OR error = '') FROM rk_peer_view() WHERE NOT is_self", 60),
	'with the right CA again it reaches them');

$_->stop('immediate', fail_ok => 1) for @all;
done_testing();
