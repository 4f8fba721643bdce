# The walkthrough's social network service against the three-node cluster:
# its checks of bad input (4xx, nothing changed), then kill -9 of the
# primary while it runs: GET keeps answering 200 for existing users, POST
# answers 503 until the new primary is up and then 200, with no restart of
# the service, and no acknowledged registration is missing afterwards.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use IPC::Run;
use lib 't';
use RKTest;

my $service = 'demo/service/rk_social';
system('make', '-s', '-C', 'demo/service') == 0 or die 'cannot build rk_social'
  unless -x $service;

my ($primary, $pgslave, $pgasync) = build_cluster();
my @all = ($primary, $pgslave, $pgasync);
my $write = $primary->safe_psql('postgres', "SELECT rk_conninfo('write', 'postgres')");
my $read = $primary->safe_psql('postgres', "SELECT rk_conninfo('read', 'postgres')");
like($write, qr/target_session_attrs=read-write/, "rk_conninfo('write'): $write");

# The service's own black-box checks, against the cluster.
my $port = PostgreSQL::Test::Cluster::get_free_port();
{
	local $ENV{RK_WRITE_CONNINFO} = $write;
	local $ENV{RK_READ_CONNINFO} = $read;
	local $ENV{RK_SERVICE_PORT} = $port;
	my ($out, $err);
	my $ok = IPC::Run::run(['bash', 'demo/service/test_service.sh'], '>', \$out, '2>', \$err);
	ok($ok, 'test_service.sh: register/get, bad JSON, missing fields, 10 MB body, bad ids, SQL injection')
	  or diag("$out\n$err");
}

# Now the service runs for the failover.
$port = PostgreSQL::Test::Cluster::get_free_port();
my ($sout, $serr) = ('', '');
my $svc = IPC::Run::start([$service, '--listen', "127.0.0.1:$port", '--write', $write, '--read', $read,
		'--schema-init'], '>', \$sout, '2>', \$serr);
my $base = "http://127.0.0.1:$port";
sub http
{
	my ($method, $path, $body) = @_;
	my ($out, $err) = ('', '');
	my @cmd = ('curl', '-s', '-m', '10', '-o', '/dev/stdout', '-w', '\n%{http_code}', '-X', $method);
	push @cmd, ('-H', 'Content-Type: application/json', '--data', $body) if defined $body;
	IPC::Run::run([@cmd, "$base$path"], '>', \$out, '2>', \$err);
	my @lines = split /\n/, $out;
	my $code = pop @lines // '000';
	return ($code, join("\n", @lines));
}
sub register
{
	my ($n) = @_;
	return http('POST', '/user/register',
		qq({"first_name":"User$n","second_name":"Test","birthdate":"1990-01-01","biography":"b","city":"Moscow","password":"pw$n"}));
}
ok(defined wait_until(sub { (http('GET', '/health'))[0] eq '200' }, 30), 'the service is up');

my @acked;
for my $n (1 .. 10)
{
	my ($code, $body) = register($n);
	is($code, '200', "register user $n") or diag($body);
	push @acked, $1 if $body =~ /"user_id"\s*:\s*"?(\d+)/;
}
my $known = $acked[0];
$pgasync->poll_query_until('postgres', "SELECT count(*) = 1 FROM users WHERE id = $known") or die;
my ($code, $body) = http('GET', "/user/$known");
is($code, '200', "GET /user/$known");

# kill -9 the primary; the service is not touched.
kill9($primary);
my $t0 = time;
my ($saw_503, $get_failures, $gets, $n) = (0, 0, 0, 100);
my $back;
while (time - $t0 < 60)
{
	($code, $body) = http('GET', "/user/$known");
	$gets++;
	$get_failures++ if $code ne '200';
	($code, $body) = register(++$n);
	if ($code eq '503')
	{
		$saw_503++;
		like($body, qr/"error"/, "POST during the outage: 503 with a reason: $body") if $saw_503 == 1;
	}
	elsif ($code eq '200')
	{
		push @acked, $1 if $body =~ /"user_id"\s*:\s*"?(\d+)/;
		if ($saw_503) { $back = time - $t0; last }
	}
	usleep(100_000);
}
ok($saw_503 > 0, "POST answered 503 while no primary was reachable ($saw_503 times)");
ok(defined $back, sprintf('POST answers 200 again, %.1f s after the kill, with no restart of the service', $back // -1));
is($get_failures, 0, "GET /user/$known answered 200 all along ($gets requests)");
for (1 .. 5)
{
	($code, $body) = register(++$n);
	push @acked, $1 if $code eq '200' && $body =~ /"user_id"\s*:\s*"?(\d+)/;
}

my $new = wait_for_primary(10, $pgslave, $pgasync);
my $have = $new->safe_psql('postgres', 'SELECT string_agg(id::text, \',\') FROM users');
my %have = map { $_ => 1 } split /,/, $have;
my @missing = grep { !$have{$_} } @acked;
is(scalar(@missing), 0, scalar(@acked) . ' acknowledged registrations, none missing on the new primary')
  or diag("missing: @missing");

$svc->signal('TERM');
$svc->finish;
done_testing();
