# The walkthrough's failure part, steps 18-27, with the kit and policy ANY 1:
# rows written, pgmaster killed, writes fail with a clear error while reads
# by id keep working on the standbys, pgslave promoted by itself with
# synchronous_standby_names = 'ANY 1 (pgmaster, pgasyncslave)', pgasyncslave
# following it, pgmaster back as a standby, and writes and reads working
# through the same multi-host connection strings, reconfigured nowhere.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use RKTest;

my ($pgmaster, $pgslave, $pgasync) = build_cluster();
my @all = ($pgmaster, $pgslave, $pgasync);
$pgmaster->safe_psql('postgres', "SELECT rk_set_sync('ANY', 1)");
is($pgmaster->safe_psql('postgres', 'SHOW synchronous_standby_names'), 'ANY 1 (pgslave, pgasyncslave)',
	'policy ANY 1');
wait_for_sync_state($pgmaster, pgslave => 'quorum', pgasyncslave => 'quorum');

my $write = write_connstr(@all);
(my $read = $write) =~ s/target_session_attrs=read-write/target_session_attrs=prefer-standby/;
sub app
{
	my ($conn, $sql) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(['timeout', '10', 'psql', '-XAtq', '-d', $conn, '-c', $sql],
		'>', \$out, '2>', \$err);
	chomp $out;
	return ($ok, $out, $err);
}

# Step 18: register users, read them back.
$pgmaster->safe_psql('postgres',
	'CREATE TABLE users (id bigserial PRIMARY KEY, first_name text, second_name text)');
my ($ok, $id) = app($write, "INSERT INTO users (first_name, second_name) VALUES ('Ivan', 'Petrov') RETURNING id");
ok($ok, "step 18: registered user $id");
app($write, "INSERT INTO users (first_name, second_name) VALUES ('Anna', 'Ivanova')") for 1 .. 4;
$pgasync->poll_query_until('postgres', 'SELECT count(*) = 5 FROM users') or die;
my ($rok, $name) = app($read, "SELECT first_name FROM users WHERE id = $id");
is($name, 'Ivan', 'step 18: read by id');

# Step 19: kill the primary.
kill9($pgmaster);

# Step 20: registering fails with a clear error; step 21: reads still work.
my ($wok, $wout, $werr) = app($write, "INSERT INTO users (first_name, second_name) VALUES ('X', 'Y')");
ok(!$wok, 'step 20: registering fails while no primary is up');
like($werr, qr/connection to server at "127\.0\.0\.1", port \d+ failed|read-only|not accept/,
	"step 20: with a clear error: " . (split /\n/, $werr)[0]);
($rok, $name) = app($read, "SELECT first_name FROM users WHERE id = $id");
is($name, 'Ivan', 'step 21: reading a user by id still works on the standbys');

# Step 22: pgslave promoted by the kit, sync list as the policy says.
my $new = wait_for_primary(30, $pgslave, $pgasync);
is($new ? $new->name : 'none', 'pgslave', 'step 22: pgslave was promoted, by nobody');
$pgslave->poll_query_until('postgres',
	"SELECT current_setting('synchronous_standby_names') = 'ANY 1 (pgmaster, pgasyncslave)'") or die;
pass("step 22: synchronous_standby_names = 'ANY 1 (pgmaster, pgasyncslave)'");

# Step 23: pgasyncslave follows pgslave.
wait_follows($pgasync, $pgslave) or die;
pass('step 23: pgasyncslave streams from pgslave');

# Step 24: pgmaster comes back as a standby when started.
$pgmaster->start;
is($pgmaster->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'step 24: pgmaster starts as a standby');
wait_follows($pgmaster, $pgslave) or die;
pass('step 24: pgmaster streams from pgslave');
$pgmaster->_update_pid(1);

# Steps 25-27: nothing reconfigured; the same strings work.
($ok, my $id2) = app($write, "INSERT INTO users (first_name, second_name) VALUES ('Olga', 'Smirnova') RETURNING id");
ok($ok, "step 27: registering works again through the same connection string (user $id2)");
poll_ok($pgmaster, "SELECT count(*) = 1 FROM users WHERE id = $id2") or die;
($rok, $name) = app($read, "SELECT first_name FROM users WHERE id = $id2");
is($name, 'Olga', 'step 27: and reading it back by id');
wait_for_sync_state($pgslave, pgmaster => 'quorum', pgasyncslave => 'quorum');
pass('both standbys are quorum members of ANY 1 again');

done_testing();
