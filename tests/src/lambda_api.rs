//! The Lambda Invoke API (`POST /2015-03-31/functions/{FunctionName}/invocations`) for the
//! functions the bed runs in-process, so an unmodified `aws-sdk-lambda` client (the CLI's
//! `replay`) can invoke them: moto cannot run a Lambda function without Docker.
//!
//! Answers as Lambda does for a `RequestResponse` invocation: 200 with the function's
//! output; 200 with `X-Amz-Function-Error: Unhandled` and `{errorType, errorMessage}` when
//! the function failed; 404 `ResourceNotFoundException` for a function the bed does not run.

use std::future::Future;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// The function name of a path's `FunctionName`: a name, a (partial) ARN, with or without
/// a qualifier, percent-encoded as the SDK sends it.
pub fn function_name(path: &str) -> Option<String> {
    let encoded = path
        .strip_prefix("/2015-03-31/functions/")?
        .split('?')
        .next()?
        .strip_suffix("/invocations")?;
    let decoded = encoded.replace("%3A", ":").replace("%3a", ":");
    let name = decoded.rsplit(":function:").next()?;
    Some(name.split(':').next()?.to_string())
}

/// Serves invocations on `listener` until the process ends; `invoke(name, payload)` runs
/// the function (`Err((errorType, errorMessage))` when it fails; errorType
/// `ResourceNotFoundException` when there is no such function).
pub async fn serve<F, Fut>(listener: TcpListener, invoke: F)
where
    F: Fn(String, Value) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, (String, String)>> + Send,
{
    while let Ok((mut socket, _)) = listener.accept().await {
        let invoke = invoke.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Ok(Some(request)) = crate::http::read_request(&mut socket, &mut buf).await {
                let payload: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let (status, extra, body) = match function_name(&request.path) {
                    Some(name) if request.method == "POST" => match invoke(name, payload).await {
                        Ok(output) => (200, "", output),
                        Err((kind, message)) if kind == "ResourceNotFoundException" => (
                            404,
                            "x-amzn-ErrorType: ResourceNotFoundException\r\n",
                            json!({"Type": "User", "message": message}),
                        ),
                        Err((kind, message)) => (
                            200,
                            "X-Amz-Function-Error: Unhandled\r\n",
                            json!({"errorType": kind, "errorMessage": message}),
                        ),
                    },
                    _ => (
                        404,
                        "x-amzn-ErrorType: ResourceNotFoundException\r\n",
                        json!({"Type": "User", "message": format!("no function at {}", request.path)}),
                    ),
                };
                let body = body.to_string();
                let answer = format!(
                    "HTTP/1.1 {status} Lambda\r\ncontent-type: application/json\r\n\
                     x-amzn-RequestId: bed\r\n{extra}content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if socket.write_all(answer.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_arns_and_qualifiers_name_the_function() {
        for path in [
            "/2015-03-31/functions/trigger-dag/invocations",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Atrigger-dag/invocations",
            "/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:trigger-dag:live/invocations",
        ] {
            assert_eq!(function_name(path).as_deref(), Some("trigger-dag"), "{path}");
        }
        assert_eq!(function_name("/2015-03-31/functions/x/configuration"), None);
    }
}
