# rk_create_replicator with a SCRAM verifier instead of a password: the
# password never appears in a statement, in pg_stat_activity, in a log or
# in rk_credentials.  Each clone brings it (the clone command's PGPASSWORD),
# keeps it in its own password file, not in primary_conninfo, and hands it
# to a node that needs it later: here the old primary, which never had it,
# rejoins after a failover and streams from the new primary.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my $primary = new_kit_node('pgmaster');
start_setup_primary($primary);

# The verifier, made where the DBA likes (here: a scratch role on this server).
$primary->safe_psql('postgres',
	"SET password_encryption = 'scram-sha-256'; SET log_statement = none; CREATE ROLE scratch PASSWORD '$REPL_PASSWORD'");
my $verifier = $primary->safe_psql('postgres', "SELECT rolpassword FROM pg_authid WHERE rolname = 'scratch'");
$primary->safe_psql('postgres', 'DROP ROLE scratch');
like($verifier, qr/^SCRAM-SHA-256\$/, 'a SCRAM verifier');

is($primary->safe_psql('postgres', "SELECT rk_create_replicator('replicator', '$verifier')"),
	'created replication role "replicator"', 'rk_create_replicator takes the verifier');
is($primary->safe_psql('postgres', "SELECT rolpassword = '$verifier' FROM pg_authid WHERE rolname = 'replicator'"),
	't', 'the role has exactly that verifier');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM rk_credentials'), '0', 'and no password is stored');
my ($ok, $out, $err) = psql_ok($primary,
	"SELECT rk_create_replicator('replicator', 'md5' || md5('x' || 'replicator'))");
like($err, qr/an md5 password hash is not accepted/, 'an md5 hash is refused');
$primary->safe_psql('postgres', "SELECT rk_allow_replication('127.0.0.1/32')");

my $pgslave = clone_standby($primary, 'pgslave');
my $pgasync = clone_standby($primary, 'pgasyncslave');
$primary->safe_psql('postgres', "SELECT rk_set_sync('FIRST', 1)");
wait_for_sync_state($primary, pgslave => 'sync', pgasyncslave => 'potential');
for my $node ($pgslave, $pgasync)
{
	ok(poll_ok($node, "SELECT setting NOT LIKE '%password=%' FROM pg_settings WHERE name = 'primary_conninfo'", 60),
		$node->name . ': the password left primary_conninfo');
	like(slurp_file($node->data_dir . '/replication_kit.pgpass'), qr/\Q$REPL_PASSWORD\E/,
		$node->name . ': its password file has it');
}
ok(!-e $primary->data_dir . '/replication_kit.pgpass' ||
	slurp_file($primary->data_dir . '/replication_kit.pgpass') !~ /\Q$REPL_PASSWORD\E/,
	'the primary never had the password');

# The old primary has to stream from the new one with a password it never had.
$primary->safe_psql('postgres', 'CREATE TABLE t (x int); INSERT INTO t VALUES (1)');
$pgslave->poll_query_until('postgres', 'SELECT count(*) = 1 FROM t') or die;
$primary->stop('immediate');
my $new = wait_for_primary(60, $pgslave, $pgasync);
ok(defined $new, 'a standby took over');
$primary->start;
ok(wait_follows($primary, $new, 120), 'the old primary rejoined and streams from ' . ($new ? $new->name : '?'));
like(slurp_file($primary->logfile), qr/took the current password of "replicator" from/,
	'with the password it got from another node');

for my $node ($primary, $pgslave, $pgasync)
{
	unlike(slurp_file($node->logfile), qr/\Q$REPL_PASSWORD\E/, $node->name . ': no log line holds the password');
}

done_testing();
