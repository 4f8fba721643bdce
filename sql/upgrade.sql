-- The upgrade chain: 1.0 updated to the newest version must be the same
-- extension as the newest installed afresh (functions with their
-- arguments, results, volatility, privileges and settings such as the
-- pinned search_path; tables and columns).
SET synchronous_commit = local;
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.rk_objects() RETURNS TABLE (kind text, name text, detail text)
LANGUAGE sql AS $$
    SELECT 'function', p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
           pg_catalog.pg_get_function_result(p.oid) || ' ' || p.provolatile::text || ' ' ||
           coalesce(p.proacl::text, 'default') || ' ' || coalesce(p.proconfig::text, 'no settings')
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'replication_kit')
    UNION ALL
    SELECT 'column', c.relname || '.' || a.attname,
           pg_catalog.format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' ' ||
           coalesce(c.relacl::text, 'default')
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e' AND c.relkind = 'r'
       AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'replication_kit')
$$;

CREATE EXTENSION replication_kit VERSION '1.0';
ALTER EXTENSION replication_kit UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'replication_kit';
CREATE TEMP TABLE updated AS SELECT * FROM pg_temp.rk_objects();
DROP EXTENSION replication_kit;

CREATE EXTENSION replication_kit;
SELECT extversion FROM pg_extension WHERE extname = 'replication_kit';
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.rk_objects();
DROP EXTENSION replication_kit;

-- Nothing differs, either way.
(SELECT 'only after the update' AS side, * FROM updated EXCEPT SELECT 'only after the update', * FROM fresh)
UNION ALL
(SELECT 'only in a fresh install', * FROM fresh EXCEPT SELECT 'only in a fresh install', * FROM updated)
ORDER BY 1, 2, 3;
SELECT count(*) > 20 AS compared_enough FROM fresh;

-- Every function runs with the pinned search_path.
SELECT count(*) AS functions_without_pinned_search_path
  FROM fresh
 WHERE kind = 'function' AND detail NOT LIKE '%search_path=pg_catalog, pg_temp%';
