# Two-phase commit goes through the commit guard too.  PREPARE TRANSACTION
# makes a transaction as durable as a commit, and COMMIT PREPARED (which
# has no transaction id of its own) acknowledges one: on a primary without
# its lease both are refused, and so is ROLLBACK PREPARED, whose outcome a
# new primary holding the same prepared transaction might contradict.
# With its majority back, the primary finishes what it prepared.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster(max_prepared_transactions => 5);
$primary->safe_psql('postgres', 'CREATE TABLE writes (id int PRIMARY KEY); CREATE TABLE probes (at timestamptz)');

my ($ok, $out, $err) = psql_ok($primary,
	"BEGIN; INSERT INTO writes VALUES (1); PREPARE TRANSACTION 'healthy'");
ok($ok, 'with its majority the primary prepares a transaction') or diag($err);
($ok, $out, $err) = psql_ok($primary, "COMMIT PREPARED 'healthy'");
ok($ok, 'and commits it') or diag($err);
($ok, $out, $err) = psql_ok($primary,
	"SET default_transaction_read_only = off; SET synchronous_commit = local; BEGIN; INSERT INTO writes VALUES (2); PREPARE TRANSACTION 'before'");
ok($ok, 'a transaction prepared while the primary holds its lease') or diag($err);
($ok, $out, $err) = psql_ok($primary,
	"SET default_transaction_read_only = off; SET synchronous_commit = local; BEGIN; INSERT INTO writes VALUES (3); PREPARE TRANSACTION 'before2'");
ok($ok, 'and another one') or diag($err);

# Both standbys stop: the lease runs out (fence_timeout 2 s).
$pgslave->stop;
$pgasync->stop;
ok(defined wait_until(sub {
	my ($ok, $out, $err) = psql_ok($primary, 'SET default_transaction_read_only = off; SET synchronous_commit = local; INSERT INTO probes VALUES (now())');
	!$ok && $err =~ /has not heard from a majority/;
}, 60), 'without a majority the primary refuses plain commits');

($ok, $out, $err) = psql_ok($primary,
	"SET default_transaction_read_only = off; SET synchronous_commit = local; BEGIN; INSERT INTO writes VALUES (4); PREPARE TRANSACTION 'fenced'");
ok(!$ok, 'PREPARE TRANSACTION is refused without the lease');
like($err, qr/cannot prepare a transaction: this primary has not heard from a majority/, 'with the reason');
is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'fenced'"), '0',
	'nothing was prepared');

($ok, $out, $err) = psql_ok($primary, "SET default_transaction_read_only = off; SET synchronous_commit = local; COMMIT PREPARED 'before'");
ok(!$ok, 'COMMIT PREPARED is refused without the lease');
like($err, qr/cannot commit a prepared transaction: this primary has not heard from a majority/, 'with the reason');
($ok, $out, $err) = psql_ok($primary, "SET default_transaction_read_only = off; SET synchronous_commit = local; ROLLBACK PREPARED 'before2'");
ok(!$ok, 'ROLLBACK PREPARED is refused without the lease');
like($err, qr/cannot roll back a prepared transaction/, 'with the reason');
is($primary->safe_psql('postgres', 'SELECT gid FROM pg_prepared_xacts ORDER BY gid'), "before\nbefore2",
	'both prepared transactions are still pending');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM writes WHERE id IN (2, 3, 4)'), '0',
	'and none of their rows is visible');

# One standby back is a majority again: the prepared transactions can be finished.
$pgslave->start;
ok(defined wait_until(sub {
	(psql_ok($primary, "SET default_transaction_read_only = off; SET synchronous_commit = local; COMMIT PREPARED 'before'"))[0] }, 60),
	'with its majority back the primary commits the prepared transaction');
($ok, $out, $err) = psql_ok($primary, "SET default_transaction_read_only = off; SET synchronous_commit = local; ROLLBACK PREPARED 'before2'");
ok($ok, 'and rolls back the other') or diag($err);
is($primary->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM writes'),
	'1,2', 'the committed rows are there, the rolled back one is not');

$pgasync->start;
done_testing();
