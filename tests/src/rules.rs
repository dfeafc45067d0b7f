//! EventBridge rules from the template, delivered to SQS in moto (moto cannot deliver to
//! Lambda without Docker), so tests hand each event to the real handler.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use serde_json::{json, Value};

use crate::Bed;

/// A template rule installed in moto with an SQS queue as its target.
pub struct RuleQueue {
    sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl Bed {
    /// Installs the template's rule `logical_id` (parameters resolved from `params`) on
    /// moto's default bus, targeting a new queue.
    pub async fn rule_to_queue(&self, logical_id: &str, params: &[(&str, &str)]) -> RuleQueue {
        let patterns = crate::template::rule_patterns(params);
        let pattern = patterns.get(logical_id).unwrap_or_else(|| {
            panic!(
                "the template has no rule {logical_id}: {:?}",
                patterns.keys()
            )
        });
        self.pattern_to_queue(logical_id, pattern).await
    }

    /// Installs a rule with `pattern` on moto's default bus, targeting a new queue.
    pub async fn pattern_to_queue(&self, logical_id: &str, pattern: &Value) -> RuleQueue {
        let config: SdkConfig = self.aws_config().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let events = aws_sdk_eventbridge::Client::new(&config);
        let queue = format!("rule-{logical_id}");
        let queue_url = sqs
            .create_queue()
            .queue_name(&queue)
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .expect("queue url");
        events
            .put_rule()
            .name(logical_id)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("PutRule");
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(format!(
                "arn:aws:sqs:{}:{}:{queue}",
                self.region, self.account
            ))
            .build()
            .expect("target");
        events
            .put_targets()
            .rule(logical_id)
            .targets(target)
            .send()
            .await
            .expect("PutTargets");
        RuleQueue { sqs, queue_url }
    }
}

impl RuleQueue {
    /// Events delivered so far, waiting up to `wait` for at least `min` of them; each is
    /// taken off the queue.
    pub async fn take(&self, min: usize, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        let mut events = vec![];
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage");
            for message in out.messages() {
                events.push(
                    serde_json::from_str(message.body().unwrap_or("null")).expect("event JSON"),
                );
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
            if (events.len() >= min && out.messages().is_empty()) || Instant::now() > deadline {
                return events;
            }
        }
    }
}

/// The event Lambda's SQS source hands a function for a new queue `queue_name` holding
/// `messages` (body, string message attributes): sent to moto's SQS and received back, so
/// ids, receipt handles and attributes are SQS's own.
pub async fn sqs_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_name: &str,
    messages: &[(String, Vec<(&str, &str)>)],
) -> Value {
    use aws_sdk_sqs::types::MessageAttributeValue;
    let queue = sqs
        .create_queue()
        .queue_name(queue_name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for (body, attributes) in messages {
        let mut send = sqs.send_message().queue_url(&queue).message_body(body);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .unwrap();
            send = send.message_attributes(*name, value);
        }
        send.send().await.unwrap();
    }
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let records: Vec<Value> = received
        .messages()
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            let value =
                                json!({"stringValue": v.string_value(), "dataType": "String"});
                            (k.clone(), value)
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(),
                   "body": m.body(), "messageAttributes": attributes, "eventSource": "aws:sqs"})
        })
        .collect();
    assert_eq!(
        records.len(),
        messages.len(),
        "every message came back in one receive"
    );
    json!({"Records": records})
}
