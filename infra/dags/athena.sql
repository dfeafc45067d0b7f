-- Athena tables over the metadata exports (Airflow 2.10 column names; other 2.x versions add or
-- drop a few columns -- JSON SerDe ignores keys a table does not declare and nulls missing ones).
-- Layout: s3://BUCKET/PREFIX/<environment>/dt=<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>/<table>/<table>.jsonl.gz
-- Each export is one partition: add it after the export (the manifest gives the path), e.g.
--   ALTER TABLE mwaa_ops_task_instance ADD IF NOT EXISTS PARTITION
--     (environment='prod', dt='2026-11-05', export='20261105T031500Z')
--     LOCATION 's3://BUCKET/PREFIX/prod/dt=2026-11-05/20261105T031500Z/task_instance/';
-- Timestamps are ISO-8601 UTC strings: from_iso8601_timestamp(start_date).
-- Secrets are envelope-encrypted ("mwaa-ops-enc:v1:...") and stay so in Athena.

CREATE EXTERNAL TABLE IF NOT EXISTS mwaa_ops_dag_run (
  id bigint, dag_id string, run_id string, run_type string, state string,
  queued_at string, execution_date string, start_date string, end_date string,
  data_interval_start string, data_interval_end string, last_scheduling_decision string,
  external_trigger boolean, creating_job_id bigint, log_template_id bigint,
  dag_hash string, clear_number int, updated_at string,
  conf string  -- base64 of Airflow 2's pickle: not queryable
)
PARTITIONED BY (environment string, dt string, export string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://BUCKET/PREFIX/';

CREATE EXTERNAL TABLE IF NOT EXISTS mwaa_ops_task_instance (
  dag_id string, task_id string, run_id string, map_index int, try_number int, max_tries int,
  state string, start_date string, end_date string, duration double, queued_dttm string,
  hostname string, unixname string, job_id bigint, pool string, pool_slots int, queue string,
  priority_weight int, operator string, custom_operator_name string, executor string,
  queued_by_job_id bigint, pid int, trigger_id bigint, updated_at string, rendered_map_index string,
  task_display_name string, external_executor_id string
)
PARTITIONED BY (environment string, dt string, export string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://BUCKET/PREFIX/';

CREATE EXTERNAL TABLE IF NOT EXISTS mwaa_ops_task_instance_history (
  id bigint, dag_id string, task_id string, run_id string, map_index int, try_number int,
  state string, start_date string, end_date string, duration double, hostname string,
  operator string, pool string, queue string, executor string, updated_at string
)
PARTITIONED BY (environment string, dt string, export string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://BUCKET/PREFIX/';

CREATE EXTERNAL TABLE IF NOT EXISTS mwaa_ops_log (
  id bigint, dttm string, dag_id string, task_id string, map_index int, event string,
  execution_date string, run_id string, owner string, owner_display_name string, extra string,
  try_number int
)
PARTITIONED BY (environment string, dt string, export string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://BUCKET/PREFIX/';

-- Example: failure rate per DAG over every export of an environment (exports overlap: each holds
-- the whole history so far, so read the latest export of each day or de-duplicate on run_id).
-- SELECT dag_id, count_if(state = 'failed') * 1.0 / count(*) AS failure_rate
-- FROM mwaa_ops_dag_run WHERE environment = 'prod' AND export = '20261105T031500Z' GROUP BY dag_id;
