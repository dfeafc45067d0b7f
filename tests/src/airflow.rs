//! A real Airflow of the bed, asked directly (not through MWAA) to check what happened.

use serde::Deserialize;
use serde_json::{json, Value};

/// One running Airflow, as `tests/bed/airflow_bed.py` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct AirflowInfo {
    pub version: String,
    pub major: u8,
    pub base_url: String,
    pub api_prefix: String,
    pub auth: String,
    pub username: String,
    pub password: String,
    pub token_url: Option<String>,
}

impl AirflowInfo {
    async fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.auth == "jwt" {
            let url = self.token_url.as_deref().expect("jwt auth has a token_url");
            let token: Value = reqwest::Client::new()
                .post(url)
                .json(&json!({"username": self.username, "password": self.password}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"))
                .json()
                .await
                .expect("token JSON");
            let token = token["access_token"].as_str().expect("access_token");
            request.bearer_auth(token)
        } else {
            request.basic_auth(&self.username, Some(&self.password))
        }
    }

    /// `GET {api}/{path}` on Airflow itself: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{}{}", self.base_url, self.api_prefix, path);
        let request = self.authorize(reqwest::Client::new().get(&url)).await;
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The DAG runs of `dag_id` whose id is `run_id` (0 or 1 of them).
    pub async fn dag_run(&self, dag_id: &str, run_id: &str) -> Option<Value> {
        let (status, body) = self.get(&format!("/dags/{dag_id}/dagRuns/{run_id}")).await;
        match status {
            200 => Some(body),
            404 => None,
            other => panic!("Airflow answered {other} for run {run_id} of {dag_id}: {body}"),
        }
    }
}
