//! What moto's SNS recorded as published on a topic (`GET /moto-api/data.json`): the emails
//! a subscriber would get.

use serde_json::Value;

use crate::Bed;

/// One message published on a topic.
#[derive(Debug, Clone)]
pub struct Email {
    pub subject: String,
    pub body: String,
    /// Message attributes as moto keeps them: `{"kind": {"Type": .., "Value": ..}}`.
    pub attributes: Value,
}

/// Everything published on `topic_arn` so far, oldest first.
pub async fn published(bed: &Bed, topic_arn: &str) -> Vec<Email> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", bed.moto_url))
        .await
        .expect("moto data")
        .json()
        .await
        .expect("moto data JSON");
    let topics = data["sns"]["Topic"].as_array().cloned().unwrap_or_default();
    let topic = topics
        .iter()
        .find(|t| t["arn"] == topic_arn)
        .unwrap_or_else(|| panic!("no topic {topic_arn} in moto"));
    topic["sent_notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| Email {
            body: n[1].as_str().unwrap_or_default().to_owned(),
            subject: n[2].as_str().unwrap_or_default().to_owned(),
            attributes: n[3].clone(),
        })
        .collect()
}

/// The alert topic `name` as the template makes it (`AlertTopic`): encrypted with the suite
/// key `suite_key`, so publishing to it needs notify's `EncryptedTopic` statement on the bed.
pub async fn alert_topic(bed: &Bed, name: &str, suite_key: &str) -> String {
    aws_sdk_sns::Client::new(&bed.aws_config().await)
        .create_topic()
        .name(name)
        .attributes("KmsMasterKeyId", suite_key)
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn
        .expect("topic arn")
}
