//! The suite key on the bed: a KMS key in moto standing for the template's `SuiteKey`, so the
//! queues and topics the template encrypts with it are encrypted with it on the bed too and
//! the bed's IAM asks the roles for the KMS permissions SQS and SNS use (tests/bed/iam_sse.py).

use serde_json::{json, Value};

use crate::Bed;

/// A new symmetric key in moto's KMS (as the template's `SuiteKey`); its ARN.
pub async fn suite_key(bed: &Bed) -> String {
    // One set-up call, made as the bed's unchecked `testing` key: the tests crate has no KMS
    // SDK (it would be one more SDK crate to build for this one request). moto reads the
    // service and region from the credential scope and checks no signature.
    let answer: Value = reqwest::Client::new()
        .post(&bed.moto_url)
        .header("X-Amz-Target", "TrentService.CreateKey")
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20261201/{}/kms/aws4_request, \
                 SignedHeaders=host, Signature=0",
                bed.region
            ),
        )
        .body(json!({"Description": "mwaa-ops data key"}).to_string())
        .send()
        .await
        .expect("CreateKey")
        .json()
        .await
        .expect("CreateKey's answer");
    answer["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap_or_else(|| panic!("no key ARN in {answer}"))
        .to_owned()
}
