/* replication_kit--1.5--1.6.sql: maintenance mode and failover priorities */

\echo Use "ALTER EXTENSION replication_kit UPDATE TO '1.6'" to load this file. \quit

ALTER TABLE @extschema@.rk_nodes
    ADD COLUMN priority integer NOT NULL DEFAULT 100 CHECK (priority BETWEEN 0 AND 1000);
ALTER TABLE @extschema@.rk_cluster
    ADD COLUMN pause_id bigint NOT NULL DEFAULT 0,
    ADD COLUMN paused_at timestamptz,
    ADD COLUMN paused_reason text;

-- rk_peer_state also says whether the node holds the cluster paused: a
-- node whose registry copy is old (a fenced old primary) follows the
-- primary's judgement.
DROP FUNCTION @extschema@.rk_peer_state(text, bigint, boolean);

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

REVOKE ALL ON FUNCTION @extschema@.rk_peer_state(text, bigint, boolean) FROM PUBLIC;

CREATE FUNCTION @extschema@.rk_peer_resume(caller text, pause_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'rk_peer_resume'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

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

REVOKE ALL ON FUNCTION
    @extschema@.rk_peer_resume(text, bigint),
    @extschema@.rk_pause(text),
    @extschema@.rk_resume(),
    @extschema@.rk_set_node(text, integer)
FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'replication_kit_node') THEN
        GRANT EXECUTE ON FUNCTION @extschema@.rk_peer_state(text, bigint, boolean),
            @extschema@.rk_peer_resume(text, bigint) TO replication_kit_node;
    END IF;
END
$$;

-- rk_status() shows a pause on the node's own row.
CREATE OR REPLACE FUNCTION @extschema@.rk_status(
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
