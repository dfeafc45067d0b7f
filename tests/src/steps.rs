//! The pause/resume steps on the bed as the template deploys them: each step's built binary
//! behind the bed's Lambda service (its Timeout, MemorySize and environment variables), signing
//! its calls with the key of its own role of the template (`<Step>FunctionRole`), so the bed
//! refuses what that role may not do. A test invokes a step as the state machines' task does
//! and gets what Lambda gives: the step's output, or its error object (`errorType` one of
//! `pause_resume::ErrorKind`, what the machines' Retry and Catch match).

use pause_resume::Step;

use crate::iam::Role;
use crate::lambda::{Deployment, Functions};
use crate::Bed;

/// The execution role the bed's environments are created with (`NewEnvironment`): the only
/// one create-environment may pass (`EnvironmentExecutionRoles`).
pub const EXECUTION_ROLE: &str = "arn:aws:iam::123456789012:role/mwaa-exec";

/// The role of `step` in the template: `create-environment` -> `CreateEnvironmentFunctionRole`.
pub fn role_of(step: Step) -> String {
    let words: String = step
        .name()
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("{words}FunctionRole")
}

/// Starts every step of the template on `bed` for environments whose names start with
/// `prefix`, keeping things in `bucket` (`SuiteBucket`); `deployment` adds what a test sets
/// (`AllowLosingSettings`, a scaled Timeout, an endpoint).
pub async fn start_steps(
    bed: &Bed,
    bucket: &str,
    prefix: &str,
    deployment: Deployment,
) -> Functions {
    let parameters = [
        ("EnvironmentNamePrefix", prefix),
        ("EnvironmentExecutionRoles", EXECUTION_ROLE),
    ];
    let mut deployment = deployment.resource("SuiteBucket", bucket.into());
    for (name, value) in parameters {
        deployment = deployment.parameter(name, value);
    }
    for step in Step::ALL {
        let mut role = Role::new(&role_of(step)).resource("SuiteBucket", bucket.into());
        for (name, value) in parameters {
            role = role.parameter(name, value);
        }
        let key = bed.as_role(&role).await.key;
        deployment = deployment.role_key(step.name(), &key);
    }
    Functions::start(bed, deployment).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_is_named_by_its_role_as_the_template_names_it() {
        let template = std::fs::read_to_string(crate::repo_root().join("infra/template.yaml"))
            .expect("the template");
        for step in Step::ALL {
            let function = role_of(step).replace("Role", "");
            assert!(
                template.contains(&format!("\n  {function}:\n")),
                "{function} ({}) is not a resource of the template",
                step.name()
            );
        }
        assert_eq!(
            role_of(Step::CreateEnvironment),
            "CreateEnvironmentFunctionRole"
        );
    }
}
