# A node registered by DNS name: the node-to-node functions take its calls
# only from the addresses its name resolves to.  They used to take a call
# naming such a node from any address (a name was "taken at its word"), so
# whoever held the node role's secret could speak for it from anywhere.
# Now each worker resolves the registered names (again every minute) and a
# call is compared with what they resolved to, without waiting on a
# resolver itself.
#
# The name is one of the machine's own that resolves to loopback addresses
# of one family only (localhost, or ip6-localhost where localhost has
# both); the attacker calls from the loopback address of the other family,
# on a standby that listens on both.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Socket qw(getaddrinfo AF_INET AF_INET6 SOCK_STREAM);
use lib 't';
use RKTest;

# Which families a name resolves to.
sub families
{
	my ($name) = @_;
	my ($err, @res) = getaddrinfo($name, '', { socktype => SOCK_STREAM });
	return () if $err;
	my %f = map { ($_->{family} == AF_INET ? 'v4' : $_->{family} == AF_INET6 ? 'v6' : 'other') => 1 } @res;
	return sort keys %f;
}

my ($name, $from);
for my $candidate (qw(localhost ip6-localhost ip6-loopback))
{
	my @f = families($candidate);
	next unless @f == 1;
	($name, $from) = ($candidate, $f[0] eq 'v4' ? '::1' : '127.0.0.1');
	last;
}
ok(defined $name, 'a host name of this machine resolves to loopback addresses of one family') or BAIL_OUT('no such name');
note("the node is registered as \"$name\"; the attacker calls from $from");

my ($primary, $pgslave, $pgasync) = build_cluster();

# pgasyncslave takes TCP connections on both loopback addresses, and its
# pg_hba.conf lets the node role in from both (as a broad "samenet" line
# would): the functions' own check is what is tested.
$pgasync->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1,::1'\n");
my $hba = slurp_file($pgasync->data_dir . '/pg_hba.conf');
open my $f, '>', $pgasync->data_dir . '/pg_hba.conf' or die;
print $f "host all replication_kit_node ::1/128 scram-sha-256\nhost all replication_kit_node 127.0.0.1/32 scram-sha-256\n$hba";
close $f;
$pgasync->restart;

$primary->safe_psql('postgres', "SELECT rk_add_standby('ghost', '$name', 5999, sync => false)");

# The node role's secret (every node has the same), once pgasyncslave has it.
my $secret_file = $pgasync->data_dir . '/pgsql_tmp.replication_kit.node_pgpass';
ok(defined wait_until(sub { -s $secret_file }, 60), "pgasyncslave has the node role's secret");
my ($secret) = slurp_file($secret_file) =~ /^\*:\*:\*:replication_kit_node:([0-9a-f]{64})$/m;
my $sysid = $pgasync->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');

# One call as the node role, from `host`, naming `caller`.
sub call_from
{
	my ($host, $caller) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGPASSWORD} = $secret;
	local $ENV{PGOPTIONS} = "-c replication_kit.peer_system_identifier=$sysid";
	my $ok = IPC::Run::run(['psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', "host=$host port=" . $pgasync->port . ' dbname=postgres user=replication_kit_node sslmode=disable',
			'-c', "SELECT node_name FROM rk_peer_state('$caller', 1, false)"],
		'>', \$out, '2>', \$err);
	chomp $out;
	return ($ok, $out, $err);
}

# From an address the name resolves to, once pgasyncslave's worker knows
# the new node and has resolved it.
my $legit = $from eq '::1' ? '127.0.0.1' : '::1';
ok(defined wait_until(sub { (call_from($legit, 'ghost'))[0] }, 60),
	"a call naming \"ghost\" from $legit, an address \"$name\" resolves to: taken");

# From another address: refused, and nothing it said is kept.
my ($ok, $out, $err) = call_from($from, 'ghost');
ok(!$ok, "the same call from $from: refused");
like($err, qr/permission denied for function rk_peer_state/, 'permission denied');
like($err, qr/"ghost" is not another registered node connected from its registered address/, 'with why');

# A node registered by address is held to it as before.
($ok, $out, $err) = call_from($from, 'pgslave');
ok(!$ok && $err =~ /permission denied/, "a call naming pgslave (registered as 127.0.0.1) from $from: refused");

is($pgasync->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'pgasyncslave is still a standby');
ok(wait_follows($pgasync, $primary, 60), 'streaming from pgmaster');

done_testing();
