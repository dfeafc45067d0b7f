//! The deployed suite, found from its CloudFormation stack: the outputs name the resources,
//! the parameters say which environments it runs and when it pauses and resumes them.

use std::collections::HashMap;

use aws_sdk_cloudformation::types::Stack;
use common::{Error, ErrorKind};
use serde::Serialize;

/// What the CLI needs of one deployment (`infra/template.yaml`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suite {
    pub stack: String,
    pub pause_arn: String,
    pub resume_arn: String,
    pub bucket: String,
    pub trigger_dag_arn: String,
    /// `EnvironmentNamePrefix`: every environment the suite may touch starts with it.
    pub prefix: String,
    /// `PausedEnvironments`: the ones the schedules pause and resume.
    pub scheduled: Vec<String>,
    pub pause_at: Option<String>,
    pub resume_at: Option<String>,
    pub time_zone: String,
}

fn missing(stack: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::Configuration,
        format!(
            "stack `{stack}` has no {what}: is it an mwaa-ops stack (infra/template.yaml)? \
             Name yours with --stack or MWAA_OPS_STACK"
        ),
    )
}

impl Suite {
    /// Reads the suite from a described stack.
    pub fn from_stack(name: &str, stack: &Stack) -> Result<Suite, Error> {
        let outputs: HashMap<&str, &str> = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?, o.output_value()?)))
            .collect();
        let parameters: HashMap<&str, &str> = stack
            .parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key()?, p.parameter_value()?)))
            .collect();
        let output = |key: &str| {
            outputs
                .get(key)
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string())
                .ok_or_else(|| missing(name, &format!("output {key}")))
        };
        let parameter = |key: &str| parameters.get(key).map(|v| v.trim().to_string());
        let scheduled = parameter("PausedEnvironments")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Ok(Suite {
            stack: name.to_string(),
            pause_arn: output("PauseStateMachineArn")?,
            resume_arn: output("ResumeStateMachineArn")?,
            bucket: output("SuiteBucketName")?,
            trigger_dag_arn: output("TriggerDagFunctionArn")?,
            prefix: parameter("EnvironmentNamePrefix")
                .ok_or_else(|| missing(name, "parameter EnvironmentNamePrefix"))?,
            scheduled,
            pause_at: parameter("PauseAt"),
            resume_at: parameter("ResumeAt"),
            time_zone: parameter("ScheduleTimezone").unwrap_or_else(|| "UTC".into()),
        })
    }

    /// Refuses an environment the suite does not operate, before any call.
    pub fn check(&self, environment: &str) -> Result<(), Error> {
        common::EnvironmentName::new(environment)
            .map_err(|e| Error::invalid_input(format!("environment `{environment}`: {e}")))?;
        if !environment.starts_with(&self.prefix) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "environment `{environment}` does not start with `{}`, the prefix stack `{}` \
                     operates (EnvironmentNamePrefix)",
                    self.prefix, self.stack
                ),
            ));
        }
        Ok(())
    }
}

/// DescribeStacks of `name`; a stack that does not exist is named in the error.
pub async fn find(
    cloudformation: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Result<Suite, Error> {
    let answer = cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| {
            let text = aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string();
            if text.contains("does not exist") {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "stack `{name}` does not exist in this account and region \
                         (--stack / MWAA_OPS_STACK, AWS_REGION / AWS_PROFILE)"
                    ),
                )
            } else {
                Error::aws("CloudFormation", "DescribeStacks", &e)
            }
        })?;
    let stack = answer
        .stacks()
        .first()
        .ok_or_else(|| missing(name, "description"))?;
    Suite::from_stack(name, stack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::types::{Output, Parameter};

    fn stack(outputs: &[(&str, &str)], parameters: &[(&str, &str)]) -> Stack {
        let mut s = Stack::builder();
        for (k, v) in outputs {
            s = s.outputs(Output::builder().output_key(*k).output_value(*v).build());
        }
        for (k, v) in parameters {
            s = s.parameters(
                Parameter::builder()
                    .parameter_key(*k)
                    .parameter_value(*v)
                    .build(),
            );
        }
        s.build()
    }

    const OUTPUTS: [(&str, &str); 4] = [
        (
            "PauseStateMachineArn",
            "arn:aws:states:eu-west-1:1:stateMachine:mwaa-ops-pause",
        ),
        (
            "ResumeStateMachineArn",
            "arn:aws:states:eu-west-1:1:stateMachine:mwaa-ops-resume",
        ),
        ("SuiteBucketName", "mwaa-ops-suite"),
        (
            "TriggerDagFunctionArn",
            "arn:aws:lambda:eu-west-1:1:function:trigger",
        ),
    ];

    #[test]
    fn outputs_name_the_resources_and_parameters_the_schedule() {
        let suite = Suite::from_stack(
            "ops",
            &stack(
                &OUTPUTS,
                &[
                    ("EnvironmentNamePrefix", "dev-"),
                    ("PausedEnvironments", "dev-a, dev-b,"),
                    ("PauseAt", "cron(0 20 ? * MON-FRI *)"),
                    ("ScheduleTimezone", "Europe/Berlin"),
                ],
            ),
        )
        .unwrap();
        assert_eq!(suite.bucket, "mwaa-ops-suite");
        assert_eq!(suite.scheduled, ["dev-a", "dev-b"]);
        assert_eq!(
            (suite.resume_at.as_deref(), suite.time_zone.as_str()),
            (None, "Europe/Berlin")
        );
        assert!(suite.check("dev-a").is_ok());
        let other = suite.check("prod-a").unwrap_err().to_string();
        assert!(
            other.contains("prod-a") && other.contains("dev-"),
            "{other}"
        );
        assert!(suite
            .check("dev-a/../x")
            .unwrap_err()
            .to_string()
            .contains("environment"));
    }

    #[test]
    fn a_stack_without_the_suites_outputs_is_named() {
        let err = Suite::from_stack("web", &stack(&OUTPUTS[..2], &[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("stack `web` has no output SuiteBucketName"),
            "{err}"
        );
    }
}
