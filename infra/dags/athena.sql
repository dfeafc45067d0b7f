-- Athena tables over the Airflow 2 metadata exports (manifest format mwaa-ops-metadata/2).
-- Objects are PostgreSQL's COPY text format: one row per line, fields separated by a tab, in the
-- order of the manifest's "columns" -- by name, so these declarations (every column of Airflow
-- 2.10.x / 2.11.0, by name) fit any 2.10-2.11 environment. Other versions have other columns:
-- declare the manifest's list for them, in its order (fields are read by position).
-- Layout: s3://BUCKET/PREFIX/<environment>/dt=<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>/<table>/<table>.tsv.gz
-- Each export is one partition: add it after the export (the manifest gives the path), e.g.
--   ALTER TABLE mwaa_ops_task_instance ADD IF NOT EXISTS PARTITION
--     (environment='prod', dt='2026-11-05', export='20261105T031500Z')
--     LOCATION 's3://BUCKET/PREFIX/prod/dt=2026-11-05/20261105T031500Z/task_instance/';
-- Values as PostgreSQL writes them: timestamps in UTC as 'YYYY-MM-DD HH:MM:SS[.ffffff]+00'
-- (CAST(substr(start_date, 1, 19) AS timestamp)), booleans 't' / 'f' (declared as strings:
-- Hive reads only true / false), binary as \x followed by hex, NULL as \N. A tab, newline or
-- backslash inside a value is written as \t, \n, \\: Athena reads \\ as \ and the others as
-- the letter alone. Secrets are envelope-encrypted ("mwaa-ops-enc:v1:...") and stay so here.

CREATE EXTERNAL TABLE IF NOT EXISTS mwaa_ops_dag_run (
  clear_number int, conf string, creating_job_id bigint, dag_hash string, dag_id string,
  data_interval_end string, data_interval_start string, end_date string, execution_date string,
  external_trigger string, id bigint, last_scheduling_decision string, log_template_id bigint,
  queued_at string, run_id string, run_type string, start_date string, state string,
  updated_at string
)
PARTITIONED BY (environment string, dt string, export string)
ROW FORMAT DELIMITED FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'
LOCATION 's3://BUCKET/PREFIX/'
TBLPROPERTIES ('serialization.null.format' = '\\N');

CREATE EXTERNAL TABLE IF NOT EXISTS mwaa_ops_task_instance (
  custom_operator_name string, dag_id string, duration double, end_date string, executor string,
  executor_config string, external_executor_id string, hostname string, job_id bigint,
  map_index int, max_tries int, next_kwargs string, next_method string, operator string, pid int,
  pool string, pool_slots int, priority_weight int, queue string, queued_by_job_id bigint,
  queued_dttm string, rendered_map_index string, run_id string, start_date string, state string,
  task_display_name string, task_id string, trigger_id bigint, trigger_timeout string,
  try_number int, unixname string, updated_at string
)
PARTITIONED BY (environment string, dt string, export string)
ROW FORMAT DELIMITED FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'
LOCATION 's3://BUCKET/PREFIX/'
TBLPROPERTIES ('serialization.null.format' = '\\N');

CREATE EXTERNAL TABLE IF NOT EXISTS mwaa_ops_task_instance_history (
  custom_operator_name string, dag_id string, duration double, end_date string, executor string,
  executor_config string, external_executor_id string, hostname string, id bigint, job_id bigint,
  map_index int, max_tries int, next_kwargs string, next_method string, operator string, pid int,
  pool string, pool_slots int, priority_weight int, queue string, queued_by_job_id bigint,
  queued_dttm string, rendered_map_index string, run_id string, start_date string, state string,
  task_display_name string, task_id string, trigger_id bigint, trigger_timeout string,
  try_number int, unixname string, updated_at string
)
PARTITIONED BY (environment string, dt string, export string)
ROW FORMAT DELIMITED FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'
LOCATION 's3://BUCKET/PREFIX/'
TBLPROPERTIES ('serialization.null.format' = '\\N');

CREATE EXTERNAL TABLE IF NOT EXISTS mwaa_ops_log (
  dag_id string, dttm string, event string, execution_date string, extra string, id bigint,
  map_index int, owner string, owner_display_name string, run_id string, task_id string,
  try_number int
)
PARTITIONED BY (environment string, dt string, export string)
ROW FORMAT DELIMITED FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'
LOCATION 's3://BUCKET/PREFIX/'
TBLPROPERTIES ('serialization.null.format' = '\\N');

-- Example: failure rate per DAG over every export of an environment (exports overlap: each holds
-- the whole history so far, so read the latest export of each day or de-duplicate on run_id).
-- SELECT dag_id, count_if(state = 'failed') * 1.0 / count(*) AS failure_rate
-- FROM mwaa_ops_dag_run WHERE environment = 'prod' AND export = '20261105T031500Z' GROUP BY dag_id;
