/* replication_kit--1.6.sql: the node registry and the SQL interface */

-- Every function runs with search_path = pg_catalog, pg_temp: nothing a
-- role with CREATE on a schema in the caller's search path plants (a
-- function, an operator) is called by the kit's superuser code.

\echo Use "CREATE EXTENSION replication_kit" to load this file. \quit

-- The registry.  Written on the primary, replicated to every standby by
-- physical replication, so that any node can read the topology.

CREATE TABLE @extschema@.rk_nodes (
    node_id     integer PRIMARY KEY,        -- registration order; the sync list follows it
    node_name   text NOT NULL UNIQUE,       -- also the slot name and the standby's application_name
    host        text NOT NULL,
    port        integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    role        text NOT NULL CHECK (role IN ('primary', 'standby')),
    sync        boolean NOT NULL DEFAULT true,  -- may be a synchronous standby
    added_at    timestamptz NOT NULL DEFAULT now(),
    joined_at   timestamptz,                -- first seen streaming; counts in quorums from then on
    priority    integer NOT NULL DEFAULT 100 CHECK (priority BETWEEN 0 AND 1000),
                                            -- breaks ties between nodes with equal WAL; 0: never promoted automatically
    UNIQUE (host, port)
);
CREATE UNIQUE INDEX rk_nodes_one_primary ON @extschema@.rk_nodes (role) WHERE role = 'primary';

CREATE TABLE @extschema@.rk_cluster (
    one_row          boolean PRIMARY KEY DEFAULT true CHECK (one_row),
    sync_method      text NOT NULL DEFAULT 'FIRST' CHECK (sync_method IN ('FIRST', 'ANY')),
    num_sync         integer NOT NULL DEFAULT 0 CHECK (num_sync >= 0),
    replication_role text,
    term             bigint NOT NULL DEFAULT 1,
    -- Maintenance mode (rk_pause): no automatic failover, rejoin or
    -- demotion while paused_at is set.  pause_id names the pause, so that
    -- a node that resumed it while the primary was down knows which one.
    pause_id         bigint NOT NULL DEFAULT 0,
    paused_at        timestamptz,
    paused_reason    text
);

CREATE TABLE @extschema@.rk_events (
    event_id    bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    term        bigint,
    kind        text NOT NULL,
    node_name   text,
    detail      text
);

-- The replication role's password.  Every node's worker writes it into its
-- password file, so a new password reaches every node with the WAL that
-- changed the role.  Superusers only, and never in a dump.  (The node
-- role's secret is in no table: whatever is here, the streaming role can
-- read through a base backup.)
CREATE TABLE @extschema@.rk_credentials (
    role        text PRIMARY KEY,
    password    text NOT NULL CHECK (password !~ '[\r\n]')
);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.rk_nodes', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rk_cluster', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rk_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rk_events_event_id_seq', '');

REVOKE ALL ON TABLE @extschema@.rk_nodes, @extschema@.rk_cluster, @extschema@.rk_events,
    @extschema@.rk_credentials FROM PUBLIC;

-- Default privileges could have granted it to someone: nobody but its owner.
DO $$
DECLARE
    grantee text;
BEGIN
    FOR grantee IN
        SELECT DISTINCT a.grantee::pg_catalog.regrole::text
          FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
         WHERE c.oid = '@extschema@.rk_credentials'::pg_catalog.regclass
           AND a.grantee <> c.relowner AND a.grantee <> 0
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON TABLE @extschema@.rk_credentials FROM %s', grantee);
    END LOOP;
END
$$;

-- Setting up the primary.

CREATE FUNCTION @extschema@.rk_setup_primary(
    node_name text, host text, port integer, max_standbys integer DEFAULT 8,
    OUT setting text, OUT old_value text, OUT new_value text, OUT needs_restart boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rk_setup_primary'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_create_replicator(role_name text, password text)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_create_replicator'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_allow_replication(
    address text, role_name text DEFAULT 'replicator',
    method text DEFAULT 'scram-sha-256', force boolean DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_allow_replication'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_revoke_replication(address text, role_name text DEFAULT 'replicator')
RETURNS text
AS 'MODULE_PATHNAME', 'rk_revoke_replication'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- Standbys and the synchronous policy.

CREATE FUNCTION @extschema@.rk_add_standby(
    node_name text, host text, port integer, sync boolean DEFAULT true,
    data_directory text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_add_standby'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_remove_standby(node_name text)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_remove_standby'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_set_sync(method text, num_sync integer)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_set_sync'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- What this node knows: the C halves of rk_status().

CREATE FUNCTION @extschema@.rk_local_node(
    OUT node_name text, OUT in_recovery boolean, OUT timeline integer, OUT lsn pg_lsn,
    OUT term bigint, OUT worker_state text, OUT last_seen_primary timestamptz,
    OUT readiness text)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_local_node'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_peer_view(
    OUT node_name text, OUT reachable boolean, OUT last_contact timestamptz,
    OUT in_recovery boolean, OUT timeline integer, OUT lsn pg_lsn, OUT term bigint,
    OUT error text, OUT is_self boolean, OUT last_seen_primary timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rk_peer_view'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- What the workers ask each other.  Callable by the node role
-- (replication_kit_node), which rk_create_replicator() makes and grants
-- them to.

CREATE FUNCTION @extschema@.rk_peer_state(
    caller text, caller_term bigint, caller_is_primary boolean,
    OUT node_name text, OUT in_recovery boolean, OUT timeline integer, OUT lsn pg_lsn,
    OUT term bigint, OUT primary_name text, OUT voted_for text, OUT silence_ms bigint,
    OUT fenced boolean, OUT needs_secret boolean, OUT failover_timeout_ms bigint,
    OUT lease_ms bigint, OUT own_timeline integer, OUT paused boolean, OUT pause_id bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_peer_state'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_request_vote(
    candidate text, term bigint, timeline integer, lsn pg_lsn, mode text,
    OUT granted boolean, OUT voter_term bigint, OUT voter_timeline integer,
    OUT voter_lsn pg_lsn, OUT reason text, OUT refusal text)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_request_vote'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_peer_fence(
    caller text, term bigint, planned boolean DEFAULT false,
    OUT was_primary boolean, OUT lsn pg_lsn, OUT timeline integer)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_peer_fence'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_peer_failover(
    force boolean, dry_run boolean, planned boolean DEFAULT false,
    OUT ok boolean, OUT forced_loss boolean, OUT result text)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_peer_failover'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- The node role's secret, handed to a node that lacks it (a fresh clone).
CREATE FUNCTION @extschema@.rk_peer_secret(secret text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'rk_peer_secret'
LANGUAGE C VOLATILE STRICT
SET search_path = pg_catalog, pg_temp;

-- The replication role's password, for a node that was away when it changed.
CREATE FUNCTION @extschema@.rk_peer_credentials(caller text, OUT role text, OUT password text)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_peer_credentials'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- A standby's rk_resume() while the primary is down, handed on to the
-- other nodes; the next primary clears the pause in the registry.
CREATE FUNCTION @extschema@.rk_peer_resume(caller text, pause_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'rk_peer_resume'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- Maintenance and failover priorities.

CREATE FUNCTION @extschema@.rk_pause(reason text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_pause'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_resume()
RETURNS text
AS 'MODULE_PATHNAME', 'rk_resume'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_set_node(node_name text, priority integer DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_set_node'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- Failover, switchover and rejoin by hand.

CREATE FUNCTION @extschema@.rk_failover(
    target text DEFAULT NULL, force boolean DEFAULT false, dry_run boolean DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_failover'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_switchover(target text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_switchover'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_conninfo(
    purpose text DEFAULT 'write', dbname text DEFAULT NULL, user_name text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'rk_conninfo'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_rejoin()
RETURNS text
AS 'MODULE_PATHNAME', 'rk_rejoin'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- rk_status(): one row per registered node, as this node sees it.

CREATE FUNCTION @extschema@.rk_status(
    OUT node_name text, OUT host text, OUT port integer, OUT role text, OUT is_self boolean,
    OUT connection text, OUT timeline integer,
    OUT sent_lsn pg_lsn, OUT flush_lsn pg_lsn, OUT replay_lsn pg_lsn,
    OUT lag_bytes numeric, OUT lag interval, OUT sync_state text,
    OUT slot_active boolean, OUT slot_retained_bytes numeric,
    OUT term bigint, OUT last_seen_primary timestamptz, OUT remark text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
WITH me AS MATERIALIZED (
    SELECT l.*,
           CASE WHEN l.in_recovery THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END AS cur_lsn
      FROM @extschema@.rk_local_node() l
),
peer AS MATERIALIZED (SELECT * FROM @extschema@.rk_peer_view()),
wr AS MATERIALIZED (SELECT * FROM pg_stat_wal_receiver)
SELECT n.node_name, n.host, n.port,
       CASE WHEN n.node_name = me.node_name
                 THEN CASE WHEN me.in_recovery THEN 'standby' ELSE 'primary' END
            WHEN p.reachable THEN CASE WHEN p.in_recovery THEN 'standby' ELSE 'primary' END
            WHEN NOT me.in_recovery THEN 'standby'
            ELSE n.role END,
       n.node_name = me.node_name,
       CASE WHEN n.node_name = me.node_name THEN 'self'
            WHEN NOT me.in_recovery THEN coalesce(r.state, 'disconnected')
            WHEN n.role = 'primary' AND wr.status IS NOT NULL THEN wr.status
            WHEN p.reachable THEN 'reachable'
            WHEN p.reachable IS NOT NULL THEN 'unreachable'
            ELSE 'unknown' END,
       CASE WHEN n.node_name = me.node_name THEN me.timeline
            WHEN NOT me.in_recovery AND r.pid IS NOT NULL THEN me.timeline
            WHEN n.role = 'primary' AND wr.received_tli IS NOT NULL THEN wr.received_tli
            ELSE p.timeline END,
       CASE WHEN n.node_name = me.node_name THEN me.cur_lsn
            WHEN NOT me.in_recovery THEN r.sent_lsn
            WHEN n.role = 'primary' THEN wr.latest_end_lsn END,
       CASE WHEN n.node_name = me.node_name
                 THEN CASE WHEN me.in_recovery THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_flush_lsn() END
            WHEN NOT me.in_recovery THEN r.flush_lsn
            ELSE p.lsn END,
       CASE WHEN n.node_name = me.node_name AND me.in_recovery THEN pg_last_wal_replay_lsn()
            WHEN NOT me.in_recovery THEN r.replay_lsn END,
       CASE WHEN n.node_name = me.node_name AND me.in_recovery
                 THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
            WHEN NOT me.in_recovery AND n.node_name <> me.node_name
                 THEN pg_wal_lsn_diff(me.cur_lsn, coalesce(r.replay_lsn, s.restart_lsn)) END,
       CASE WHEN n.node_name = me.node_name AND me.in_recovery
                 THEN CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN interval '0'
                           ELSE now() - pg_last_xact_replay_timestamp() END
            WHEN NOT me.in_recovery THEN r.replay_lag END,
       r.sync_state,
       s.active,
       pg_wal_lsn_diff(me.cur_lsn, s.restart_lsn),
       CASE WHEN n.node_name = me.node_name THEN me.term ELSE p.term END,
       CASE WHEN n.node_name = me.node_name THEN me.last_seen_primary ELSE p.last_seen_primary END,
       nullif(concat_ws('; ',
                        CASE WHEN n.node_name = me.node_name AND c.paused_at IS NOT NULL
                             THEN 'cluster paused since ' || c.paused_at::text
                                  || coalesce(': ' || c.paused_reason, '') END,
                        nullif(CASE WHEN n.node_name = me.node_name THEN me.readiness ELSE p.error END, ''),
                        CASE WHEN ls.kind = 'slot_lost' THEN ls.detail END), '')
  FROM @extschema@.rk_nodes n
 CROSS JOIN me
  LEFT JOIN @extschema@.rk_cluster c ON true
  LEFT JOIN peer p ON p.node_name = n.node_name
  LEFT JOIN LATERAL (
        SELECT * FROM pg_stat_replication sr
         WHERE sr.application_name = n.node_name AND NOT me.in_recovery
         ORDER BY sr.state = 'streaming' DESC, sr.backend_start DESC
         LIMIT 1) r ON true
  LEFT JOIN pg_replication_slots s ON s.slot_name = n.node_name AND s.slot_type = 'physical'
  -- A standby whose slot lost its WAL, until it streams again (a fresh clone).
  LEFT JOIN LATERAL (
        SELECT e.kind, e.detail FROM @extschema@.rk_events e
         WHERE e.node_name = n.node_name AND e.kind IN ('slot_lost', 'resynced')
         ORDER BY e.event_id DESC
         LIMIT 1) ls ON true
  LEFT JOIN wr ON me.in_recovery AND n.role = 'primary'
 ORDER BY n.node_id
$$;

-- The failover state machine the workers run, and the events they derive.

CREATE FUNCTION @extschema@.rk_transitions(
    OUT state text, OUT event text, OUT next_state text, OUT action text,
    OUT follow_ups text[], OUT ignore boolean, OUT why text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rk_transitions'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.rk_derivable_events(OUT state text, OUT event text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rk_derivable_events'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION
    @extschema@.rk_transitions(),
    @extschema@.rk_derivable_events(),
    @extschema@.rk_setup_primary(text, text, integer, integer),
    @extschema@.rk_create_replicator(text, text),
    @extschema@.rk_allow_replication(text, text, text, boolean),
    @extschema@.rk_revoke_replication(text, text),
    @extschema@.rk_add_standby(text, text, integer, boolean, text),
    @extschema@.rk_remove_standby(text),
    @extschema@.rk_set_sync(text, integer),
    @extschema@.rk_local_node(),
    @extschema@.rk_peer_view(),
    @extschema@.rk_peer_state(text, bigint, boolean),
    @extschema@.rk_request_vote(text, bigint, integer, pg_lsn, text),
    @extschema@.rk_peer_fence(text, bigint, boolean),
    @extschema@.rk_peer_failover(boolean, boolean, boolean),
    @extschema@.rk_peer_secret(text),
    @extschema@.rk_peer_credentials(text),
    @extschema@.rk_failover(text, boolean, boolean),
    @extschema@.rk_switchover(text),
    @extschema@.rk_rejoin(),
    @extschema@.rk_conninfo(text, text, text),
    @extschema@.rk_status(),
    @extschema@.rk_peer_resume(text, bigint),
    @extschema@.rk_pause(text),
    @extschema@.rk_resume(),
    @extschema@.rk_set_node(text, integer)
FROM PUBLIC;
