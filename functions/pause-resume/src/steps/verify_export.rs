//! verify-export: checks a metadata export against its manifest before the pause deletes
//! the environment. The manifest is the one `mwaa_ops_export` writes (infra/dags/README.md,
//! "Export"): per table the object key, row count and SHA-256 of the gzip object, one row per line.

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::digest::{Measured, ObjectDigest};
use crate::ops::Objects;
use crate::steps::proof::origin_problems;
use common::{EnvironmentName, Error, ErrorKind};

/// The manifest formats this step understands (`FORMAT`, `DATABASE_FORMAT` in
/// mwaa_ops_metadata.py): JSON Lines objects (Airflow 3 REST exports) and PostgreSQL COPY text
/// objects (Airflow 2 database exports). Both hold one row per line, which is all it counts.
pub const MANIFEST_FORMATS: [&str; 2] = ["mwaa-ops-metadata/1", "mwaa-ops-metadata/2"];

/// What the export DAG sends to the task token (its other keys are ignored), and what the
/// pause adds: the environment it pauses and its execution.
#[derive(Debug, Deserialize)]
pub struct Input {
    pub bucket: String,
    pub manifest_key: String,
    #[serde(default)]
    pub manifest_sha256: Option<String>,
    /// The S3 version the export wrote: the snapshot record keeps it with the manifest's
    /// SHA-256 so that the import reads exactly what was verified. `null` (an unversioned
    /// bucket) is refused: such an export could be replaced unnoticed.
    #[serde(default)]
    pub manifest_version_id: Option<String>,
    /// The manifest must name it.
    pub environment: EnvironmentName,
    /// `$$.Execution.Id`: carried into the result, which the snapshot record keeps and
    /// delete-environment checks.
    pub execution: String,
    /// `$$.Execution.StartTime`: the manifest must have been written after it.
    pub execution_started: String,
}

/// The parts of the manifest that are checked.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub format: String,
    #[serde(default)]
    pub export_id: Option<String>,
    #[serde(default)]
    pub active_dags: Option<Vec<String>>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    pub tables: Vec<TableEntry>,
}

#[derive(Debug, Deserialize)]
pub struct TableEntry {
    pub table: String,
    pub key: String,
    pub rows: u64,
    pub sha256: String,
}

/// What is wrong with one table's object, or `None` when it matches the manifest.
pub fn check_table(entry: &TableEntry, measured: Option<&Measured>) -> Option<String> {
    let at = format!("table {} (object {})", entry.table, entry.key);
    let Some(measured) = measured else {
        return Some(format!("{at}: the object is missing"));
    };
    if !measured.sha256.eq_ignore_ascii_case(&entry.sha256) {
        return Some(format!(
            "{at}: SHA-256 {} does not match the manifest's {}",
            measured.sha256, entry.sha256
        ));
    }
    match &measured.lines {
        Err(e) => Some(format!("{at}: not valid gzip: {e}")),
        Ok(rows) if *rows != entry.rows => Some(format!(
            "{at}: {rows} rows, the manifest says {}",
            entry.rows
        )),
        Ok(_) => None,
    }
}

/// verify-export: `{"bucket", "manifest_key", "manifest_sha256"?, "manifest_version_id",
/// "environment", "execution", "execution_started"}` -> `{"verified": true, "manifest",
/// "manifest_sha256", "manifest_version_id", "tables", "rows", "environment", "execution",
/// "created_at", "export_id"?, "active_dags"?}`.
pub async fn verify_export(objects: &impl Objects, event: Value) -> Result<Value, Error> {
    let input: Input = crate::parse(&with_export_answer(event))?;
    if input.bucket.is_empty() || input.manifest_key.is_empty() {
        return Err(Error::invalid_input(
            "fields `bucket` and `manifest_key` must not be empty",
        ));
    }
    check_export(objects, &input).await
}

/// The pause hands over the export DAG's whole answer as `export`: a JSONPath to a member the
/// answer lacks (an older DAG file has no `manifest_version_id`) would fail the execution with
/// `States.Runtime`, which no Catch takes, leaving the DAGs paused. Read from here, a missing
/// member is this step's own refusal, which the pause catches and re-enables the DAGs after.
/// Members given at the top level win.
fn with_export_answer(mut event: Value) -> Value {
    let Some(answer) = event.as_object_mut().and_then(|e| e.remove("export")) else {
        return event;
    };
    if let (Some(event), Some(answer)) = (event.as_object_mut(), answer.as_object()) {
        for field in [
            "bucket",
            "manifest_key",
            "manifest_sha256",
            "manifest_version_id",
        ] {
            if let Some(value) = answer.get(field) {
                event.entry(field).or_insert_with(|| value.clone());
            }
        }
    }
    event
}

/// Reads the manifest (checking its own SHA-256 when given), then streams every table's
/// object. Every problem found is named in one `ExportNotVerified` error.
pub async fn check_export(objects: &impl Objects, input: &Input) -> Result<Value, Error> {
    let location = format!("s3://{}/{}", input.bucket, input.manifest_key);
    let not_verified =
        |what: String| Error::new(ErrorKind::ExportNotVerified, format!("{location}: {what}"));
    let Some(version) = input
        .manifest_version_id
        .as_deref()
        .filter(|v| !v.is_empty())
    else {
        return Err(not_verified(
            "the export reported no S3 version of its manifest (is the bucket versioned?): \
             the import could not be bound to what is verified here"
                .into(),
        ));
    };
    let Some(bytes) = objects.get(&input.bucket, &input.manifest_key).await? else {
        return Err(not_verified("the manifest does not exist".into()));
    };
    let actual = hex::encode(Sha256::digest(&bytes));
    if let Some(expected) = &input.manifest_sha256 {
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(not_verified(format!(
                "manifest SHA-256 {actual} does not match {expected}, the one the export reported"
            )));
        }
    }
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| not_verified(format!("the manifest is not readable: {e}")))?;
    if !MANIFEST_FORMATS.contains(&manifest.format.as_str()) {
        return Err(not_verified(format!(
            "manifest format {:?}, expected one of {MANIFEST_FORMATS:?}",
            manifest.format
        )));
    }
    if manifest.tables.is_empty() {
        return Err(not_verified("the manifest lists no tables".into()));
    }
    // Before any object is read: another environment's or an older night's export is not
    // this pause's, however valid.
    let origin = origin_problems(
        manifest.environment.as_deref(),
        manifest.created_at.as_deref(),
        &input.environment,
        &input.execution_started,
    )?;
    if !origin.is_empty() {
        return Err(not_verified(origin.join("; ")));
    }
    let (mut problems, mut bytes) = (vec![], 0);
    for entry in &manifest.tables {
        let mut digest = ObjectDigest::default();
        let found = objects
            .digest(&input.bucket, &entry.key, &mut digest)
            .await?;
        let measured = found.then(|| digest.finish());
        bytes += measured.as_ref().map_or(0, |m| m.bytes);
        problems.extend(check_table(entry, measured.as_ref()));
    }
    if !problems.is_empty() {
        return Err(not_verified(problems.join("; ")));
    }
    let rows: u64 = manifest.tables.iter().map(|t| t.rows).sum();
    let mut out = json!({"verified": true, "manifest": location,
        "manifest_sha256": actual, "manifest_version_id": version,
        "tables": manifest.tables.len(), "rows": rows, "bytes": bytes,
        "environment": input.environment.as_str(), "execution": input.execution,
        "created_at": manifest.created_at});
    if let Some(id) = manifest.export_id {
        out["export_id"] = json!(id);
    }
    if let Some(dags) = manifest.active_dags {
        out["active_dags"] = json!(dags);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{gzip, MemoryObjects};

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    const ROOT: &str = "mwaa-ops/metadata/dev/dt=2026-11-03/20261103T010203Z";

    /// An export of two tables as the Airflow 2 DAG writes it (PostgreSQL COPY text: a raw
    /// newline only ends a row); returns the manifest's SHA-256.
    fn export(s3: &MemoryObjects) -> String {
        export_as(s3, MANIFEST_FORMATS[1])
    }

    fn export_as(s3: &MemoryObjects, format: &str) -> String {
        let mut tables = vec![];
        for (table, rows) in [("dag_run", 3), ("variable", 0)] {
            let (text, key): (String, _) = if format == MANIFEST_FORMATS[1] {
                let text = (0..rows)
                    .map(|i| format!("{i}\t\\N\tline\\nbreak\n"))
                    .collect();
                (text, format!("{ROOT}/{table}/{table}.tsv.gz"))
            } else {
                let text = (0..rows).map(|i| format!("{{\"id\":{i}}}\n")).collect();
                (text, format!("{ROOT}/{table}/{table}.jsonl.gz"))
            };
            let body = gzip(&text);
            tables.push(json!({"table": table, "key": key, "rows": rows,
                "sha256": sha(&body), "bytes": body.len(), "max_id": null, "columns": ["id"]}));
            s3.insert("exports", &key, body);
        }
        let manifest = json!({"format": format, "export_id": "e-1",
            "environment": "dev", "created_at": "2026-11-03T01:02:03.000004+00:00",
            "active_dags": ["etl"], "tables": tables});
        let body = serde_json::to_vec_pretty(&manifest).unwrap();
        let digest = sha(&body);
        s3.insert("exports", &format!("{ROOT}/manifest.json"), body);
        digest
    }

    const STARTED: &str = "2026-11-03T01:00:00.000Z";

    fn input(sha256: Option<String>) -> Input {
        Input {
            bucket: "exports".into(),
            manifest_key: format!("{ROOT}/manifest.json"),
            manifest_sha256: sha256,
            manifest_version_id: Some("v1".into()),
            environment: EnvironmentName::new("dev").unwrap(),
            execution: "arn:aws:states:us-east-1:1:execution:p:1".into(),
            execution_started: STARTED.into(),
        }
    }

    async fn refused(s3: &MemoryObjects, sha256: Option<String>) -> String {
        let err = check_export(s3, &input(sha256)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExportNotVerified, "{err}");
        err.to_string()
    }

    #[tokio::test]
    async fn a_complete_export_is_verified() {
        let s3 = MemoryObjects::default();
        let digest = export(&s3);
        let out = check_export(&s3, &input(Some(digest.to_uppercase())))
            .await
            .unwrap();
        assert_eq!(out["verified"], true);
        assert_eq!(out["tables"], 2);
        assert_eq!(out["rows"], 3);
        assert_eq!(
            out["manifest"],
            format!("s3://exports/{ROOT}/manifest.json")
        );
        assert_eq!(out["export_id"], "e-1");
        assert_eq!(out["active_dags"], json!(["etl"]));
        assert_eq!(out["environment"], "dev");
        assert_eq!(out["execution"], "arn:aws:states:us-east-1:1:execution:p:1");
        assert_eq!(
            (
                out["manifest_sha256"].clone(),
                out["manifest_version_id"].clone()
            ),
            (json!(digest), json!("v1")),
            "the snapshot record binds the import to this version and digest"
        );
        let digest = export_as(&s3, MANIFEST_FORMATS[0]); // an Airflow 3 export: JSON Lines
        let out = check_export(&s3, &input(Some(digest))).await.unwrap();
        assert_eq!(
            (out["verified"].clone(), out["rows"].clone()),
            (json!(true), json!(3))
        );
    }

    #[tokio::test]
    async fn another_environments_or_an_older_export_is_refused_before_any_object_is_read() {
        let s3 = MemoryObjects::default();
        let digest = export(&s3);
        let other = Input {
            environment: EnvironmentName::new("prod").unwrap(),
            ..input(Some(digest.clone()))
        };
        let err = check_export(&s3, &other).await.unwrap_err();
        common::testing::assert_fails_as(err, ErrorKind::ExportNotVerified, &["not \"prod\""]);
        let later = Input {
            execution_started: "2026-11-04T01:00:00Z".into(),
            ..input(Some(digest))
        };
        let err = check_export(&s3, &later).await.unwrap_err();
        common::testing::assert_fails_as(
            err,
            ErrorKind::ExportNotVerified,
            &["before this pause started"],
        );
    }

    #[tokio::test]
    async fn the_export_dags_task_output_is_the_input() {
        let s3 = MemoryObjects::default();
        let digest = export(&s3);
        let event = json!({"manifest": format!("s3://exports/{ROOT}/manifest.json"),
            "bucket": "exports", "manifest_key": format!("{ROOT}/manifest.json"),
            "manifest_sha256": digest, "manifest_version_id": "v1", "export_id": "e-1", "airflow_version": "2.10.3",
            "alembic_revision": "5f2621c13b39", "tables": 2, "rows": 3, "active_dags": ["etl"],
            "environment": "dev", "execution": "arn:e", "execution_started": STARTED});
        assert_eq!(
            verify_export(&s3, event.clone()).await.unwrap()["verified"],
            true
        );
        let mut without = event;
        without.as_object_mut().unwrap().remove("execution_started");
        let err = verify_export(&s3, without).await.unwrap_err();
        common::testing::assert_invalid_input(err, &["execution_started"]);
        let err = verify_export(&s3, json!({"bucket": "exports"}))
            .await
            .unwrap_err();
        common::testing::assert_invalid_input(err, &["manifest_key"]);
    }

    #[tokio::test]
    async fn an_export_without_a_manifest_version_is_refused() {
        let s3 = MemoryObjects::default();
        let digest = export(&s3);
        for version in [None, Some(String::new())] {
            let unversioned = Input {
                manifest_version_id: version,
                ..input(Some(digest.clone()))
            };
            let err = check_export(&s3, &unversioned).await.unwrap_err();
            common::testing::assert_fails_as(err, ErrorKind::ExportNotVerified, &["no S3 version"]);
        }
    }

    /// The pause passes the DAG's answer whole: one without a version (an older DAG file) is
    /// this step's ExportNotVerified, which the pause catches, not the execution's
    /// States.Runtime, which nothing catches.
    #[tokio::test]
    async fn the_export_answer_is_read_whole_and_an_older_one_is_refused_not_lost() {
        let s3 = MemoryObjects::default();
        let digest = export(&s3);
        let mut answer = json!({"bucket": "exports", "manifest_key": format!("{ROOT}/manifest.json"),
            "manifest": "s3://exports/m", "manifest_sha256": digest, "manifest_version_id": "v1",
            "export_id": "e-1", "active_dags": ["etl"]});
        let event = |answer: &Value| {
            json!({"environment": "dev", "export": answer,
                "execution": "arn:aws:states:us-east-1:1:execution:p:1",
                "execution_started": STARTED})
        };
        let out = verify_export(&s3, event(&answer)).await.unwrap();
        assert_eq!(
            (&out["verified"], &out["manifest_version_id"]),
            (&json!(true), &json!("v1"))
        );
        answer
            .as_object_mut()
            .unwrap()
            .remove("manifest_version_id");
        let err = verify_export(&s3, event(&answer)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ExportNotVerified, "{err}");
        assert!(err.to_string().contains("no S3 version"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_object_is_named_with_its_table() {
        let s3 = MemoryObjects::default();
        export(&s3);
        let key = format!("{ROOT}/dag_run/dag_run.tsv.gz");
        s3.remove("exports", &key);
        let message = refused(&s3, None).await;
        assert!(message.contains("table dag_run"), "{message}");
        assert!(message.contains(&key), "{message}");
        assert!(message.contains("missing"), "{message}");
    }

    #[tokio::test]
    async fn a_changed_object_fails_its_checksum() {
        let s3 = MemoryObjects::default();
        export(&s3);
        let key = format!("{ROOT}/variable/variable.tsv.gz");
        s3.insert("exports", &key, gzip("9\n"));
        let message = refused(&s3, None).await;
        assert!(message.contains("table variable"), "{message}");
        assert!(message.contains("SHA-256"), "{message}");
    }

    #[tokio::test]
    async fn the_manifest_must_be_the_one_the_export_reported() {
        let s3 = MemoryObjects::default();
        export(&s3);
        let message = refused(&s3, Some(sha(b"another manifest"))).await;
        assert!(message.contains("manifest SHA-256"), "{message}");
        let missing = MemoryObjects::default();
        assert!(refused(&missing, None).await.contains("does not exist"));
    }

    #[tokio::test]
    async fn a_manifest_of_another_format_or_without_tables_is_refused() {
        let s3 = MemoryObjects::default();
        let key = format!("{ROOT}/manifest.json");
        s3.insert(
            "exports",
            &key,
            br#"{"format": "mwaa-ops-metadata/3", "tables": []}"#.to_vec(),
        );
        assert!(refused(&s3, None).await.contains("format"));
        let empty = json!({"format": MANIFEST_FORMATS[0], "tables": []}).to_string();
        s3.insert("exports", &key, empty.into_bytes());
        assert!(refused(&s3, None).await.contains("no tables"));
        s3.insert("exports", &key, b"not json".to_vec());
        assert!(refused(&s3, None).await.contains("not readable"));
    }

    #[test]
    fn row_counts_and_gzip_damage_are_caught() {
        let body = gzip("a\nb\nc");
        let mut digest = ObjectDigest::default();
        body.chunks(3).for_each(|c| digest.update(c));
        let measured = digest.finish();
        assert_eq!(measured.lines, Ok(3), "a last line without newline counts");
        let entry = TableEntry {
            table: "xcom".into(),
            key: "k/xcom.jsonl.gz".into(),
            rows: 2,
            sha256: measured.sha256.clone(),
        };
        let problem = check_table(&entry, Some(&measured)).unwrap();
        assert!(problem.contains("3 rows, the manifest says 2"), "{problem}");
        assert!(problem.contains("k/xcom.jsonl.gz"), "{problem}");

        let truncated = &body[..body.len() - 4];
        let mut digest = ObjectDigest::default();
        digest.update(truncated);
        let measured = digest.finish();
        let entry = TableEntry {
            sha256: measured.sha256.clone(),
            ..entry
        };
        let problem = check_table(&entry, Some(&measured)).unwrap();
        assert!(problem.contains("not valid gzip"), "{problem}");
    }
}
