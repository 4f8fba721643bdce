/* replication_kit--1.0--1.1.sql: typed node-to-node answers, the state table in SQL */

\echo Use "ALTER EXTENSION replication_kit UPDATE TO '1.1'" to load this file. \quit

-- rk_request_vote() says why it refused with a code as well as in words,
-- and rk_peer_failover() answers in typed columns: callers decide on data,
-- never on text.  Their OUT columns change, so they are dropped and made
-- again, and the replication role gets its grants back.

DROP FUNCTION @extschema@.rk_request_vote(text, bigint, integer, pg_lsn, text);
CREATE FUNCTION @extschema@.rk_request_vote(
    candidate text, term bigint, timeline integer, lsn pg_lsn, mode text,
    OUT granted boolean, OUT voter_term bigint, OUT voter_timeline integer,
    OUT voter_lsn pg_lsn, OUT reason text, OUT refusal text)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_request_vote'
LANGUAGE C VOLATILE;

DROP FUNCTION @extschema@.rk_peer_failover(boolean, boolean, boolean);
CREATE FUNCTION @extschema@.rk_peer_failover(
    force boolean, dry_run boolean, planned boolean DEFAULT false,
    OUT ok boolean, OUT forced_loss boolean, OUT result text)
RETURNS record
AS 'MODULE_PATHNAME', 'rk_peer_failover'
LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.rk_transitions(
    OUT state text, OUT event text, OUT next_state text, OUT action text,
    OUT follow_ups text[], OUT ignore boolean, OUT why text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rk_transitions'
LANGUAGE C STABLE;

CREATE FUNCTION @extschema@.rk_derivable_events(OUT state text, OUT event text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'rk_derivable_events'
LANGUAGE C STABLE;

REVOKE ALL ON FUNCTION
    @extschema@.rk_request_vote(text, bigint, integer, pg_lsn, text),
    @extschema@.rk_peer_failover(boolean, boolean, boolean),
    @extschema@.rk_transitions(),
    @extschema@.rk_derivable_events()
FROM PUBLIC;

DO $$
DECLARE
    r text := (SELECT replication_role FROM @extschema@.rk_cluster);
BEGIN
    IF r IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
        EXECUTE pg_catalog.format(
            'GRANT EXECUTE ON FUNCTION %1$s.rk_request_vote(text, bigint, integer, pg_lsn, text), '
            '%1$s.rk_peer_failover(boolean, boolean, boolean) TO %2$I',
            '@extschema@', r);
    END IF;
END
$$;
