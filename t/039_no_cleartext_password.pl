# Nobody who takes a node's address gets a password out of the others.
# pgasyncslave is down, and in its place something listens on its address
# and port that answers like a PostgreSQL server without TLS and asks every
# client for its password in cleartext (what a man in the middle, or anyone
# who can bind the port of a node that is down, would do).  The other
# nodes' workers keep probing that address as the node role.  By default
# (rk_setup_primary gave the servers TLS; replication_kit.sslmode and
# channel_binding are 'auto'), the kit's connections require TLS and bind
# their SCRAM login to it: they give up at the missing TLS, and no password
# ever reaches the impostor.  (Before, with libpq's 'prefer', every probe
# handed it the node secret.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use lib 't';
use RKTest;

my ($primary, $pgslave, $pgasync) = build_cluster();
is($primary->safe_psql('postgres', 'SHOW ssl'), 'on', 'rk_setup_primary turned TLS on');
is($pgslave->safe_psql('postgres', 'SHOW ssl'), 'on', 'and the clone has it too');
is($pgslave->safe_psql('postgres',
	"SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'replication_kit_node'"),
	't', "the other nodes' probes of pgslave run over TLS");

my $port = $pgasync->port;
$pgasync->stop;

my $record = "${PostgreSQL::Test::Utils::tmp_check}/impostor.log";
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0)
{
	# The impostor: accept, refuse TLS and GSS encryption, read the startup
	# packet, ask for a cleartext password, record whatever comes back.
	my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
		Listen => 16, ReuseAddr => 1) or die "cannot listen on $port: $!";
	alarm 120;
	while (my $c = $listen->accept)
	{
		open my $log, '>>', $record;
		$log->autoflush(1);
		print $log "connection\n";
		my ($len, $buf);
		while (1)
		{
			last unless read_n($c, 4, \$len);
			my $n = unpack('N', $len);
			last unless $n >= 8 && $n < 10000 && read_n($c, $n - 4, \$buf);
			my $code = unpack('N', $buf);
			if ($code == 80877103 || $code == 80877104)
			{
				print $log "encryption request refused\n";
				print $c 'N';
				next;
			}
			print $log "startup packet\n";
			print $c pack('aNN', 'R', 8, 3);    # AuthenticationCleartextPassword
			my $type;
			if (read_n($c, 1, \$type) && $type eq 'p')
			{
				print $log "PASSWORD RECEIVED\n";
			}
			last;
		}
		close $log;
		close $c;
	}
	exit 0;

	sub read_n
	{
		my ($sock, $n, $out) = @_;
		$$out = '';
		while (length($$out) < $n)
		{
			my $got = sysread($sock, my $chunk, $n - length($$out));
			return 0 unless $got;
			$$out .= $chunk;
		}
		return 1;
	}
}

# Wait until the other nodes have tried several times.
my $tries = wait_until(sub {
	return 0 unless -e $record;
	my @conn = grep { /^connection$/ } split /\n/, slurp_file($record);
	return @conn >= 6;
}, 60);
kill 'TERM', $pid;
waitpid($pid, 0);
ok(defined $tries, 'the other nodes kept calling the address of pgasyncslave');
my $log = -e $record ? slurp_file($record) : '';
unlike($log, qr/PASSWORD RECEIVED/, 'and none of them sent a password to the impostor');
unlike($log, qr/startup packet/, 'none even went on without TLS');

done_testing();
