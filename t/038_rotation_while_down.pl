# A standby that is down while the replication password changes comes back
# with the old password in its password file.  Its WAL receiver cannot log
# in, so it would never replay the change and never stream again.  Its
# worker notices that it does not stream although its primary answers,
# asks the primary (as the node role) for the current password and takes
# it; the standby streams again by itself.  When no node has a password
# that works, rk_status() on the standby says that its WAL receiver cannot
# log in.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
my $new_password = 'rotated-' . int(rand(1_000_000_000));

$pgasync->stop;
$primary->safe_psql('postgres',
	"SET log_statement = none; SELECT rk_create_replicator('replicator', '$new_password')");
ok(wait_follows($pgslave, $primary, 60), 'pgslave, up during the change, keeps following');

my $log_offset = -s $pgasync->logfile;
$pgasync->start;
ok(wait_follows($pgasync, $primary, 90), 'pgasyncslave, down during the change, streams again');
my $log = slurp_file($pgasync->logfile, $log_offset);
like($log, qr/password authentication failed|took the current password/,
	'it had to get past the old password');
like($log, qr/took the current password of "replicator" from pgmaster/, 'its worker took the new one from pgmaster');
like(slurp_file($pgasync->data_dir . '/replication_kit.pgpass'), qr/\Q$new_password\E/,
	'and its password file holds it');
unlike($log, qr/\Q$new_password\E/, 'the new password is in no line of its log');

# A password changed behind the kit's back (ALTER ROLE by hand): no node
# has the new one to hand over, and the standby cannot stream.  rk_status()
# on it says why, in its own row, and stops saying it once it streams again.
my $self_remark = "SELECT coalesce(remark, '') FROM rk_status() WHERE is_self";
$primary->safe_psql('postgres', "SET log_statement = none; ALTER ROLE replicator PASSWORD 'changed-by-hand'");
$primary->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'pgasyncslave'");
ok( $pgasync->poll_query_until('postgres', "SELECT ($self_remark) ~ "
			. q{'the WAL receiver cannot log in to pgmaster as "replicator": FATAL: +password authentication failed'}),
	'rk_status() on pgasyncslave says that its WAL receiver cannot log in, and why');
unlike($pgasync->safe_psql('postgres', $self_remark), qr/changed-by-hand|\Q$new_password\E/,
	'without a password');
$primary->safe_psql('postgres', "SET log_statement = none; ALTER ROLE replicator PASSWORD '$new_password'");
ok(wait_follows($pgasync, $primary, 90), 'with the password back, it streams again');
ok($pgasync->poll_query_until('postgres', "SELECT ($self_remark) !~ 'cannot log in'"),
	'and rk_status() no longer says it');

done_testing();
