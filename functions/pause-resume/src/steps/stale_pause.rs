//! The pausing mark a resume finds when it leaves the environment as it is (`NotResumed`).
//!
//! A pause ends its own mark on every ending that leaves the environment up, except one that
//! never reaches its ending: stopped by hand (or timed out), or whose `EndPausing` failed.
//! Its mark would then hold the environment's arrivals for good. The resume that finds the
//! environment `AVAILABLE` ends such a mark — unless the execution it names is still
//! running, since then it is a pause in flight whose export must not miss a run — and asks
//! the state machine to replay what is held. With no mark, it asks for a replay only when
//! something is held (a pause's final replay that failed, or a retried invocation whose
//! first attempt ended the mark): a skipped pause's resume replays nothing.

use serde_json::{json, Value};

use common::{Error, ErrorKind, Status};

pub use crate::ops::{Mark, PauseMarks};

/// `pausing/<environment>`: what `MarkPausing` writes and trigger-dag honours.
pub fn pausing_key(environment: &str) -> String {
    format!("pausing/{environment}")
}

/// `held/<environment>/`: where trigger-dag keeps the arrivals it held.
pub fn held_prefix(environment: &str) -> String {
    format!("held/{environment}/")
}

/// What to do about the mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkDecision {
    /// No mark: arrivals start runs; replay what an earlier failure left held, if anything.
    NoMark,
    /// Leave it, for this reason; replay nothing (it would only be held again).
    Keep(String),
    /// The pause that wrote it has ended: remove it, then replay.
    End,
}

/// Whether the mark's pause may still be working: running, or a redrive asked and starting
/// (PENDING_REDRIVE). A pause that failed, timed out or was aborted has ended here although
/// Step Functions could redrive it for 14 days: its mark would otherwise hold arrivals that
/// long. Redriving a pause whose mark a resume ended would go on without its mark: start a new
/// pause instead (README, "Pause and resume").
fn still_pausing(status: &str) -> bool {
    matches!(status, "RUNNING" | "PENDING_REDRIVE")
}

/// The mark names an execution in its body (`$$.Execution.Id`).
fn is_execution_arn(body: &str) -> bool {
    body.starts_with("arn:") && body.contains(":execution:")
}

/// `execution`: the status of the execution the mark names, once asked (`None` inside: Step
/// Functions does not know it, long ended).
pub fn decide_mark(
    status: &Status,
    mark: Option<&Mark>,
    execution: Option<Option<&str>>,
) -> MarkDecision {
    if !status.is_available() {
        return MarkDecision::Keep(format!(
            "the environment is {status}: arrivals stay held until it is AVAILABLE"
        ));
    }
    let Some(mark) = mark else {
        return MarkDecision::NoMark;
    };
    if !is_execution_arn(mark.body.trim()) {
        return MarkDecision::Keep(format!(
            "the mark names no pause execution ({:?}): delete it by hand if no pause is running",
            mark.body.chars().take(80).collect::<String>()
        ));
    }
    match execution {
        Some(Some(s)) if still_pausing(s) => MarkDecision::Keep(format!(
            "the pause {} is {s}: its mark stays until it ends",
            mark.body.trim()
        )),
        Some(_) => MarkDecision::End,
        None => MarkDecision::Keep("the pause's execution was not read".into()),
    }
}

/// How many versions of the mark one step ends at most: the bucket is versioned, so removing
/// the version read brings back the one under it (a retried `MarkPausing` that wrote twice, a
/// pause marking over an older stopped one's mark): each is decided on again.
const MARK_VERSIONS: usize = 10;

/// Decides and acts: `{"mark": "none" | "ended" | "kept", "replay", "execution"?,
/// "execution_status"?, "why"?}`, the part of create-environment's answer the resume's
/// `NotResumed` path works from.
pub async fn settle_mark(
    marks: &impl PauseMarks,
    bucket: &str,
    environment: &str,
    status: &Status,
) -> Result<Value, Error> {
    let key = pausing_key(environment);
    let mut ended: Option<Value> = None;
    for _ in 0..MARK_VERSIONS {
        let mark = if status.is_available() {
            marks.mark(bucket, &key).await?
        } else {
            None
        };
        let mut unread = None;
        let execution = match &mark {
            Some(m) if is_execution_arn(m.body.trim()) => {
                match marks.execution_status(m.body.trim()).await {
                    Ok(s) => Some(s),
                    // A throttle is retried by the state machine; a refusal (another
                    // stack's or region's execution) keeps the mark instead of failing the
                    // resume over it.
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => {
                        unread = Some(e.to_string());
                        None
                    }
                }
            }
            _ => Some(None),
        };
        let execution_status = execution.clone().flatten();
        let decision = decide_mark(
            status,
            mark.as_ref(),
            execution.as_ref().map(|e| e.as_deref()),
        );
        let mut out = match &decision {
            MarkDecision::NoMark => match ended.take() {
                Some(ended) => ended,
                None => {
                    let held = marks
                        .anything_under(bucket, &held_prefix(environment))
                        .await?;
                    json!({"mark": "none", "replay": held})
                }
            },
            MarkDecision::Keep(why) => {
                let why = match &unread {
                    Some(e) => format!("{why}: {e}"),
                    None => why.clone(),
                };
                json!({"mark": "kept", "replay": false, "why": why})
            }
            MarkDecision::End => {
                let version = mark.as_ref().and_then(|m| m.version.as_deref());
                marks.end_mark(bucket, &key, version).await?;
                let mut out = json!({"mark": "ended", "replay": true,
                       "why": "the pause that wrote it has ended without removing it"});
                add_execution(&mut out, mark.as_ref(), &execution_status);
                ended = Some(out);
                continue;
            }
        };
        // No mark left after ending one: `out` is that ending's answer, execution and all.
        add_execution(&mut out, mark.as_ref(), &execution_status);
        tracing::info!(environment, key, outcome = %out, "pausing mark");
        return Ok(out);
    }
    Err(Error::new(
        ErrorKind::OperationFailed,
        format!(
            "s3://{bucket}/{key}: more than {MARK_VERSIONS} versions of the pausing mark name \
         ended pauses; delete it by hand, then `mwaa-ops replay {environment}`"
        ),
    ))
}

fn add_execution(out: &mut Value, mark: Option<&Mark>, execution_status: &Option<String>) {
    if let Some(m) = mark {
        out["execution"] = json!(m.body.trim());
        if let Some(s) = execution_status {
            out["execution_status"] = json!(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const PAUSE: &str = "arn:aws:states:us-east-1:123456789012:execution:mwaa-ops-pause:p-1";

    fn mark(body: &str) -> Mark {
        Mark {
            body: body.into(),
            version: Some("v2".into()),
        }
    }

    #[test]
    fn a_mark_whose_pause_ended_is_ended_and_a_running_pause_keeps_it() {
        let up = Status::Available;
        let m = mark(PAUSE);
        for ended in ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"] {
            assert_eq!(
                decide_mark(&up, Some(&m), Some(Some(ended))),
                MarkDecision::End,
                "{ended}"
            );
        }
        // Step Functions forgets executions 90 days after they close.
        assert_eq!(decide_mark(&up, Some(&m), Some(None)), MarkDecision::End);
        for running in ["RUNNING", "PENDING_REDRIVE"] {
            let MarkDecision::Keep(why) = decide_mark(&up, Some(&m), Some(Some(running))) else {
                panic!("{running}: a pause in flight lost its mark");
            };
            assert!(why.contains(PAUSE) && why.contains(running), "{why}");
        }
        assert_eq!(decide_mark(&up, None, Some(None)), MarkDecision::NoMark);
    }

    #[test]
    fn nothing_is_ended_while_the_environment_is_not_available_or_the_mark_is_not_a_pauses() {
        let m = mark(PAUSE);
        for status in [Status::Updating, Status::Creating, Status::Maintenance] {
            let MarkDecision::Keep(why) = decide_mark(&status, Some(&m), Some(Some("ABORTED")))
            else {
                panic!("{status}: ended");
            };
            assert!(why.contains(status.as_str()), "{why}");
            assert!(matches!(
                decide_mark(&status, None, Some(None)),
                MarkDecision::Keep(_)
            ));
        }
        let MarkDecision::Keep(why) =
            decide_mark(&Status::Available, Some(&mark("by hand")), Some(None))
        else {
            panic!("a hand-written mark was ended");
        };
        assert!(why.contains("by hand"), "{why}");
    }

    /// The mark and the executions in memory; what was removed, with its version.
    #[derive(Default)]
    struct Marks {
        /// Every version of the mark, the current one last (the bucket is versioned).
        versions: Mutex<Vec<Mark>>,
        status: Option<String>,
        ended: Mutex<Vec<(String, Option<String>)>>,
        asked: Mutex<Vec<String>>,
        held: bool,
        /// DescribeExecution refused, retryably or not.
        describe_refused: Option<ErrorKind>,
    }

    /// What settle_mark answers for an AVAILABLE environment `dev`.
    async fn settled(marks: &Marks) -> Value {
        settle_mark(marks, "suite", "dev", &Status::Available)
            .await
            .unwrap()
    }

    /// One version of a mark naming [`PAUSE`], whose execution is `status`.
    fn marked(status: &str) -> Marks {
        Marks {
            versions: Mutex::new(vec![mark(PAUSE)]),
            status: Some(status.into()),
            ..Default::default()
        }
    }

    impl PauseMarks for Marks {
        async fn mark(&self, _: &str, _: &str) -> Result<Option<Mark>, Error> {
            Ok(self.versions.lock().unwrap().last().cloned())
        }
        async fn end_mark(&self, _: &str, key: &str, version: Option<&str>) -> Result<(), Error> {
            self.ended
                .lock()
                .unwrap()
                .push((key.into(), version.map(String::from)));
            // As S3 does: removing one version makes the one under it current.
            self.versions
                .lock()
                .unwrap()
                .retain(|m| m.version.as_deref() != version);
            Ok(())
        }
        async fn execution_status(&self, execution: &str) -> Result<Option<String>, Error> {
            self.asked.lock().unwrap().push(execution.into());
            match self.describe_refused {
                Some(kind) => Err(Error::new(
                    kind,
                    "Step Functions DescribeExecution failed: AccessDeniedException",
                )),
                None => Ok(self.status.clone()),
            }
        }
        async fn anything_under(&self, _: &str, prefix: &str) -> Result<bool, Error> {
            assert_eq!(prefix, "held/dev/");
            Ok(self.held)
        }
    }

    #[tokio::test]
    async fn an_aborted_pauses_mark_is_removed_at_its_version_and_the_answer_says_so() {
        let marks = Marks {
            versions: Mutex::new(vec![mark(&format!("{PAUSE}\n"))]),
            held: true,
            ..marked("ABORTED")
        };
        let out = settled(&marks).await;
        assert_eq!(out["mark"], "ended");
        assert_eq!(out["replay"], true);
        assert_eq!(out["execution"], PAUSE);
        assert_eq!(out["execution_status"], "ABORTED");
        assert_eq!(*marks.asked.lock().unwrap(), [PAUSE]);
        assert_eq!(
            *marks.ended.lock().unwrap(),
            [("pausing/dev".to_owned(), Some("v2".to_owned()))]
        );
        // Again (a retried invocation): no mark, but arrivals held: still a replay.
        let again = settled(&marks).await;
        assert_eq!(again, json!({"mark": "none", "replay": true}));
        assert_eq!(marks.ended.lock().unwrap().len(), 1);
        // No mark and nothing held (a skipped pause): nothing to replay.
        let skipped = Marks::default();
        let out = settled(&skipped).await;
        assert_eq!(out, json!({"mark": "none", "replay": false}));
    }

    #[tokio::test]
    async fn a_running_pause_keeps_its_mark_and_nothing_is_replayed() {
        let marks = marked("RUNNING");
        let out = settled(&marks).await;
        assert_eq!(out["mark"], "kept");
        assert_eq!(out["replay"], false);
        assert_eq!(out["execution_status"], "RUNNING");
        assert!(marks.ended.lock().unwrap().is_empty());
        assert_eq!(marks.versions.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_environment_not_available_is_not_looked_at() {
        let marks = marked("ABORTED");
        let out = settle_mark(&marks, "suite", "dev", &Status::Updating)
            .await
            .unwrap();
        assert_eq!(out["mark"], "kept");
        assert_eq!(out["replay"], false);
        assert!(marks.asked.lock().unwrap().is_empty());
        assert!(marks.ended.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn every_version_of_a_mark_whose_pause_ended_is_ended_not_only_the_newest() {
        // A retried MarkPausing wrote the mark twice: removing the newest version brings the
        // older one back, which names the same ended pause.
        let older = Mark {
            body: PAUSE.into(),
            version: Some("v1".into()),
        };
        let marks = Marks {
            versions: Mutex::new(vec![older, mark(PAUSE)]),
            held: true,
            ..marked("ABORTED")
        };
        let out = settled(&marks).await;
        assert_eq!(out["mark"], "ended");
        assert_eq!(out["replay"], true);
        assert!(marks.versions.lock().unwrap().is_empty());
        let versions: Vec<_> = marks
            .ended
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.1.clone())
            .collect();
        assert_eq!(versions, [Some("v2".to_owned()), Some("v1".to_owned())]);
    }

    #[tokio::test]
    async fn a_mark_whose_execution_cannot_be_read_is_kept_and_a_throttle_is_retried() {
        let refused = |kind| Marks {
            versions: Mutex::new(vec![mark(PAUSE)]),
            held: true,
            describe_refused: Some(kind),
            ..Default::default()
        };
        let denied = refused(ErrorKind::OperationFailed);
        let out = settled(&denied).await;
        assert_eq!(out["mark"], "kept");
        assert_eq!(out["replay"], false);
        assert!(
            out["why"]
                .as_str()
                .unwrap()
                .contains("AccessDeniedException"),
            "{out}"
        );
        assert!(denied.ended.lock().unwrap().is_empty(), "ended unread");
        let throttled = refused(ErrorKind::Retryable);
        let err = settle_mark(&throttled, "suite", "dev", &Status::Available)
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(throttled.ended.lock().unwrap().is_empty(), "ended unread");
    }
}
