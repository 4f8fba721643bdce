-- The failover state machine the workers run is complete: every (state,
-- event) pair a worker can meet has exactly one row (a transition or an
-- explicit "ignore"), and every row can fire.  A worker meets the pairs its
-- rounds derive (rk_derivable_events) in the states it reaches from idle,
-- and the follow-up events the actions of the rows it fires may return.
SET client_min_messages = warning;
SET synchronous_commit = local;
CREATE TEMP TABLE t AS SELECT * FROM rk_transitions();
CREATE TEMP TABLE d AS SELECT * FROM rk_derivable_events();

CREATE FUNCTION pg_temp.fsm_problems() RETURNS TABLE (problem text, state text, event text)
LANGUAGE sql AS $$
    WITH RECURSIVE met(state, event) AS (
        SELECT d.state, d.event FROM d WHERE d.state = 'idle'
        UNION
        SELECT x.state, x.event
          FROM met m
          JOIN t ON t.state = m.state AND t.event = m.event
          CROSS JOIN LATERAL (
              SELECT d2.state, d2.event FROM d d2 WHERE d2.state = t.next_state
              UNION ALL
              SELECT t.next_state, f FROM unnest(t.follow_ups) f) x
    )
    SELECT 'no row', m.state, m.event FROM met m
     WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.state = m.state AND t.event = m.event)
    UNION ALL
    SELECT 'row never fires', t.state, t.event FROM t
     WHERE NOT EXISTS (SELECT 1 FROM met m WHERE m.state = t.state AND m.event = t.event)
    UNION ALL
    SELECT 'more than one row', t.state, t.event FROM t GROUP BY t.state, t.event HAVING count(*) > 1
    ORDER BY 1, 2, 3
$$;

-- The table as it is: no problem.
SELECT * FROM pg_temp.fsm_problems();
SELECT count(*) > 40 AS rows, count(*) FILTER (WHERE ignore) > 5 AS ignore_rows FROM t;

-- The check has teeth: a missing row, a row that cannot fire, a duplicate.
DELETE FROM t WHERE state = 'following' AND event = 'primary_dead';
INSERT INTO t VALUES ('promoting', 'majority_ok', 'primary', 'renew_lease', '{}', false, NULL);
INSERT INTO t SELECT * FROM t WHERE state = 'primary' AND event = 'deposed';
SELECT * FROM pg_temp.fsm_problems();

-- Every state, event and action name the table uses is one the code knows.
SELECT DISTINCT action FROM rk_transitions() ORDER BY 1;
SELECT state, count(*) AS rows, count(*) FILTER (WHERE NOT ignore) AS transitions
  FROM rk_transitions() GROUP BY state ORDER BY 1;

-- Only superusers may read it, like every other function of the kit.
CREATE ROLE rk_fsm_reader;
SET ROLE rk_fsm_reader;
SELECT count(*) FROM rk_transitions();
RESET ROLE;
DROP ROLE rk_fsm_reader;
