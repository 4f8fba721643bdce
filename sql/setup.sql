-- The walkthrough's steps 4-14 done with the kit, on one server: every
-- function's normal use, and that calling it again changes nothing.
--
-- No standby ever connects here (that is the TAP suite's job), so the
-- session commits locally to stay clear of the synchronous policy it sets.
SET synchronous_commit = local;
CREATE EXTENSION replication_kit;

-- Before the primary is set up, the functions that need it say so.
SELECT rk_create_replicator('replicator', 'secret');
SELECT rk_set_sync('FIRST', 1);

-- Step 4: replication settings.  wal_log_hints waits for a restart.
SELECT * FROM rk_setup_primary('pgmaster', '127.0.0.1', 5432) ORDER BY setting;
-- Idempotent: nothing left to change, the restart is still pending.
SELECT * FROM rk_setup_primary('pgmaster', '127.0.0.1', 5432) ORDER BY setting;
SELECT name, setting FROM pg_file_settings
 WHERE sourcefile LIKE '%postgresql.auto.conf' ORDER BY name;

-- Step 5: the replication role, SCRAM only, password nowhere in sight.
SELECT rk_create_replicator('replicator', 'secret');
SELECT rolname, rolcanlogin, rolreplication, rolsuper, rolpassword LIKE 'SCRAM-SHA-256$%' AS scram
  FROM pg_authid WHERE rolname = 'replicator';
-- ... and the nodes' own role, whose random secret no person sees.
SELECT rolname, rolcanlogin, rolreplication, rolsuper, rolcreaterole, rolcreatedb,
       rolpassword LIKE 'SCRAM-SHA-256$%' AS scram
  FROM pg_authid WHERE rolname = 'replication_kit_node';
-- Its secret is in a file no base backup carries, and in no table.
SELECT md5(pg_read_file('pgsql_tmp.replication_kit.node_pgpass')) AS node_secret_md5 \gset
SELECT regexp_replace(pg_read_file('pgsql_tmp.replication_kit.node_pgpass'), ':[0-9a-f]{64}\n$', ':<64 hex digits>')
    AS node_passfile;
SELECT rk_create_replicator('replicator', 'secret2');   -- same role: new password
SELECT md5(pg_read_file('pgsql_tmp.replication_kit.node_pgpass')) = :'node_secret_md5' AS node_secret_kept;
SELECT role, length(password) AS length FROM rk_credentials ORDER BY role;
-- The node role's sessions log no statements (a secret passes as a parameter).
SELECT unnest(setconfig) AS node_role_setting FROM pg_db_role_setting
 WHERE setrole = 'replication_kit_node'::regrole ORDER BY 1;
-- The replication password reaches the password file; the streaming role
-- may stream and nothing else.
SELECT regexp_replace(l, ':[^:]*$', ':...') AS passfile_line
  FROM regexp_split_to_table(pg_read_file('replication_kit.pgpass'), E'\n') AS l
 WHERE l <> '' ORDER BY 1;
SELECT r AS role, f AS function, has_function_privilege(r, f, 'EXECUTE') AS may_execute
  FROM unnest(ARRAY['replicator', 'replication_kit_node']) AS r,
       unnest(ARRAY['rk_peer_state(text, bigint, boolean)',
                    'rk_request_vote(text, bigint, integer, pg_lsn, text)',
                    'rk_peer_failover(boolean, boolean, boolean)',
                    'rk_peer_secret(text)',
                    'pg_read_binary_file(text)']) AS f
 ORDER BY 1, 2;
SELECT count(*) AS events_with_password FROM rk_events WHERE detail LIKE '%secret%';

-- Step 6: pg_hba.conf, the kit's lines only, valid for the server's parser.
SELECT rk_allow_replication('127.0.0.1/32');
SELECT rk_allow_replication('127.0.0.1');                -- the same address: nothing to do
SELECT rk_allow_replication('10.1.0.0/16', 'replicator', 'md5');
SELECT rk_allow_replication('10.1.0.0/16', 'replicator', 'scram-sha-256');  -- method replaced
SELECT rk_allow_replication('::1');
SELECT line_number > 0 AS numbered, type, database, user_name, address, netmask, auth_method
  FROM pg_hba_file_rules WHERE user_name && '{replicator,replication_kit_node}' ORDER BY line_number;
SELECT count(*) AS hba_errors FROM pg_hba_file_rules WHERE error IS NOT NULL;

-- Steps 8-13: two standbys, each with a slot and the command that clones it.
SELECT rk_add_standby('pgslave', '127.0.0.1', 15432);
SELECT rk_add_standby('pgasyncslave', '127.0.0.1', 25432, data_directory => '/var/lib/postgresql/pgasyncslave');
SELECT rk_add_standby('far_standby', '192.0.2.10', 5432, sync => false);
-- A host name of hex digits is a name, not an address.
SELECT rk_add_standby('hex_host', 'cafe', 5432, sync => false);
SELECT rk_remove_standby('hex_host');
SELECT slot_name, slot_type, restart_lsn IS NOT NULL AS reserved FROM pg_replication_slots ORDER BY slot_name;
-- A host no rule lets in gets the kit's lines, tagged with the standby's name.
SELECT address, auth_method FROM pg_hba_file_rules WHERE address = '192.0.2.10' ORDER BY line_number;

-- Step 14: the synchronous policy, rebuilt from the registry.
SHOW synchronous_standby_names;
SELECT rk_set_sync('FIRST', 1);
SELECT name, setting FROM pg_file_settings
 WHERE name = 'synchronous_standby_names' ORDER BY seqno DESC LIMIT 1;
SELECT rk_set_sync('any', 2);
SELECT rk_set_sync('FIRST', 0);                          -- asynchronous
SELECT rk_set_sync('FIRST', 1);
SELECT sync_method, num_sync, replication_role, term FROM rk_cluster;

-- The registry and the status, as the primary sees it.
SELECT node_id, node_name, host, port, role, sync FROM rk_nodes ORDER BY node_id;
SELECT node_name, host, port, role, is_self, connection, sync_state, slot_active, term
  FROM rk_status();

-- Removing a standby undoes all of it: slot, pg_hba.conf lines, sync list.
SELECT rk_remove_standby('far_standby');
SELECT slot_name FROM pg_replication_slots ORDER BY slot_name;
SELECT count(*) AS far_lines FROM pg_hba_file_rules WHERE address = '192.0.2.10';
SHOW synchronous_standby_names;
SELECT rk_add_standby('far_standby', '192.0.2.10', 5432, sync => false);   -- and it can come back
SELECT rk_remove_standby('far_standby');

-- Revoking removes only the kit's own lines.
SELECT rk_revoke_replication('10.1.0.0/16');
SELECT rk_revoke_replication('10.1.0.0/16');             -- nothing left
SELECT count(*) AS lines_for_10_1 FROM pg_hba_file_rules WHERE address = '10.1.0.0';

-- Every event was recorded, none with a secret in it.
SELECT kind, node_name, detail FROM rk_events ORDER BY event_id;

-- What applications connect with.
SELECT rk_conninfo('write');
SELECT rk_conninfo('read', 'social', 'app');

-- The worker runs and can be seen.
SELECT backend_type FROM pg_stat_activity WHERE backend_type = 'replication_kit worker';

-- Maintenance mode: paused, shown on this node's row, resumed.
SELECT rk_pause('kernel upgrade on the standbys');
SELECT rk_pause('kernel upgrade, second round');          -- a new reason only
SELECT paused_at IS NOT NULL AS paused, paused_reason, pause_id >= 1000 AS numbered_by_term FROM rk_cluster;
SELECT node_name, remark ~ '^cluster paused since .*: kernel upgrade, second round' AS shows_pause
  FROM rk_status() WHERE is_self;
SELECT rk_resume();
SELECT paused_at IS NULL AS resumed, paused_reason FROM rk_cluster;
SELECT rk_resume();                                        -- nothing to resume
SELECT kind, detail ~ '^pause [0-9]+' AS names_the_pause FROM rk_events
 WHERE kind IN ('paused', 'resumed') ORDER BY event_id;

-- Failover priorities.
SELECT rk_set_node('pgasyncslave', priority => 0);
SELECT rk_set_node('pgasyncslave', priority => 50);
SELECT node_name, priority FROM rk_nodes ORDER BY node_id;
