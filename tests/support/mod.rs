//! Fixtures for the integration tests: a fresh table in DynamoDB Local per test, the
//! real handler, and requests built from JSON events as API Gateway and ALB send them.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::HeaderMap;
use lambda_http::{Body, Request};
use oidc_client_secret::api::Service;
use oidc_client_secret::app::{App, AppKey};
use oidc_client_secret::config::{ClaimNames, Config, SecretSettings};
use oidc_client_secret::ids::{AppId, OrgId, ProjectId, UserId};
use oidc_client_secret::regenerate::{APP_WRITE_PERMISSION, Store};
use oidc_client_secret::store::dynamodb::{DynamoStore, client_from_env};
use oidc_client_secret::store::keys;
use oidc_client_secret::store::seed::NewApp;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

pub const ORG: &str = "org-a";
pub const OTHER_ORG: &str = "org-b";
pub const PROJECT: &str = "proj-1";
pub const APP: &str = "app-1";
pub const USER: &str = "user-1";
pub const ORG_CLAIM: &str = "urn:zitadel:iam:user:resourceowner:id";

pub type Item = HashMap<String, AttributeValue>;

/// A shipped function's environment against DynamoDB at `dynamodb` (DynamoDB Local, or an
/// address in front of it), at the most verbose log settings a user can make: still no
/// secret, hash or payload may reach the log.
pub fn function_env_at(dynamodb: &str, table: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TABLE_NAME", table.to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.to_owned()),
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE".into()),
        ("LOG_SIGNABLE_BODY", "true".into()),
    ]
}

/// [`function_env_at`] the DynamoDB Local that `make test` started.
pub fn function_env(table: &str) -> Vec<(&'static str, String)> {
    function_env_at(&std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("run with `make test`"), table)
}

/// A client for the DynamoDB Local that `make test` started.
pub async fn dynamodb_store(table: &str) -> DynamoStore {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some(),
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test`, which starts DynamoDB Local"
    );
    DynamoStore::new(client_from_env().await, table)
}

/// A store whose endpoint refuses connections: any storage call fails with 503.
pub async fn unreachable_store() -> DynamoStore {
    let client = client_from_env().await;
    let config = client.config().to_builder().endpoint_url("http://127.0.0.1:1").build();
    DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), "unreachable")
}

pub fn unique_table() -> String {
    format!("test-{:016x}", rand::random::<u64>())
}

pub fn config(table: &str, secret: SecretSettings) -> Config {
    Config {
        table_name: table.to_owned(),
        secret,
        claims: ClaimNames::default(),
        event_retention: None,
        required_scopes: Vec::new(),
    }
}

pub struct Fixture {
    pub service: Service<DynamoStore>,
    pub store: DynamoStore,
}

/// A new table with the standard app (OIDC, BASIC) and an org member with write permission.
pub async fn fixture() -> Fixture {
    fixture_with(SecretSettings::default()).await
}

pub async fn fixture_with(settings: SecretSettings) -> Fixture {
    let store = empty_table().await;
    seed_app(&store, NewApp::oidc(key(ORG, PROJECT, APP), "client-1")).await;
    seed_member(&store, ORG, None, USER, &[APP_WRITE_PERMISSION]).await;
    let service = Service::new(store.clone(), &config(store.table(), settings));
    Fixture { service, store }
}

pub async fn empty_table() -> DynamoStore {
    let store = dynamodb_store(&unique_table()).await;
    assert!(store.create_table().await.expect("create table in DynamoDB Local"));
    store
}

pub fn key(org: &str, project: &str, app: &str) -> AppKey {
    AppKey {
        org: OrgId::parse(org, "org").unwrap(),
        project: ProjectId::parse(project).unwrap(),
        app: AppId::parse(app).unwrap(),
    }
}

pub async fn seed_app(store: &DynamoStore, app: NewApp) {
    assert!(store.put_app(&app).await.expect("put app"), "app already existed");
}

pub async fn seed_member(store: &DynamoStore, org: &str, project: Option<&str>, user: &str, permissions: &[&str]) {
    let permissions: Vec<String> = permissions.iter().map(|p| p.to_string()).collect();
    let project = project.map(|p| ProjectId::parse(p).unwrap());
    store
        .grant(
            &OrgId::parse(org, "org").unwrap(),
            project.as_ref(),
            &UserId::parse(user, "user").unwrap(),
            &permissions,
        )
        .await
        .expect("grant");
}

pub async fn app(store: &DynamoStore, org: &str, project: &str, app: &str) -> App {
    store.app(&key(org, project, app)).await.expect("read app").expect("app exists")
}

/// Every item of the table, sorted by key.
pub async fn scan(store: &DynamoStore) -> Vec<Item> {
    let pages = store.client().scan().table_name(store.table()).consistent_read(true).into_paginator().items().send();
    let mut items: Vec<Item> = pages.collect::<Result<Vec<_>, _>>().await.expect("scan");
    items.sort_by_key(|i| format!("{:?}{:?}", i.get("pk"), i.get("sk")));
    items
}

/// The event items of one app, in sequence order.
pub async fn events(store: &DynamoStore, org: &str, project: &str, app: &str) -> Vec<Item> {
    let app_key = key(org, project, app);
    let output = store
        .client()
        .query()
        .table_name(store.table())
        .consistent_read(true)
        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
        .expression_attribute_values(":pk", AttributeValue::S(keys::org_pk(&app_key.org)))
        .expression_attribute_values(":prefix", AttributeValue::S(keys::events_prefix(&app_key)))
        .send()
        .await
        .expect("query events");
    output.items.unwrap_or_default()
}

/// Changes one attribute of the app item behind the use case's back: `None` removes it.
pub async fn set_app_attribute(store: &DynamoStore, key: &AppKey, name: &str, value: Option<AttributeValue>) {
    let update = store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(keys::org_pk(&key.org)))
        .key("sk", AttributeValue::S(keys::app_sk(&key.project, &key.app)))
        .expression_attribute_names("#attr", name);
    let update = match value {
        Some(value) => update.update_expression("SET #attr = :value").expression_attribute_values(":value", value),
        None => update.update_expression("REMOVE #attr"),
    };
    update.send().await.expect("update the app item");
}

pub fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    match item.get(name) {
        Some(AttributeValue::S(s)) | Some(AttributeValue::N(s)) => s,
        other => panic!("attribute {name}: {other:?}"),
    }
}

// ---- requests ----

/// Path segments are encoded as a browser would: everything but `A-Z a-z 0-9 - . _ ~ @`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'@');

pub fn route(project: &str, app: &str) -> String {
    format!(
        "/management/v1/projects/{}/apps/{}/oidc_config/_generate_client_secret",
        utf8_percent_encode(project, SEGMENT),
        utf8_percent_encode(app, SEGMENT)
    )
}

/// What the client sends; turned into an event of each kind below.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// API Gateway's decoded `pathParameters`, when the route has them.
    pub path_parameters: Option<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub base64: bool,
}

impl Call {
    /// POST to the route, with `pathParameters` as a `{projectId}/{appId}` route has them.
    pub fn post(project: &str, app: &str) -> Self {
        Self {
            method: "POST".into(),
            path: route(project, app),
            path_parameters: Some((project.into(), app.into())),
            headers: vec![("content-type".into(), "application/json".into())],
            body: None,
            base64: false,
        }
    }

    /// A request on a `$default` or `{proxy+}` route: only the raw path.
    pub fn raw(method: &str, path: &str) -> Self {
        Self { method: method.into(), path: path.into(), path_parameters: None, ..Self::post(PROJECT, APP) }
    }

    pub fn org(self, org: &str) -> Self {
        self.header("x-zitadel-orgid", org)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }

    fn path_parameters_json(&self) -> Value {
        match &self.path_parameters {
            Some((project, app)) => json!({"projectId": project, "appId": app}),
            None => Value::Null,
        }
    }

    /// HTTP API v2 headers: one string per name, repeated values joined by commas.
    fn joined_headers(&self) -> Value {
        let mut map: HashMap<String, String> = HashMap::new();
        for (name, value) in &self.headers {
            map.entry(name.to_lowercase()).and_modify(|v| *v = format!("{v},{value}")).or_insert_with(|| value.clone());
        }
        json!(map)
    }

    /// REST API and ALB headers: last value in `headers`, all of them in `multiValueHeaders`.
    fn multi_headers(&self) -> (Value, Value) {
        let mut single: HashMap<String, String> = HashMap::new();
        let mut multi: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in &self.headers {
            single.insert(name.clone(), value.clone());
            multi.entry(name.clone()).or_default().push(value.clone());
        }
        (json!(single), json!(multi))
    }
}

pub fn claims(user: &str, org: &str) -> Value {
    json!({"sub": user, ORG_CLAIM: org, "iss": "https://issuer.example.com", "aud": "api", "exp": "1795000000"})
}

fn v2_event(call: &Call, authorizer: Value, route_key: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": call.path,
        "rawQueryString": "",
        "headers": call.joined_headers(),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "r3pmxmplak",
            "authorizer": authorizer,
            "domainName": "r3pmxmplak.execute-api.eu-central-1.amazonaws.com",
            "domainPrefix": "r3pmxmplak",
            "http": {"method": call.method, "path": call.path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
            "requestId": format!("req-{:08x}", rand::random::<u32>()),
            "routeKey": route_key,
            "stage": "$default",
            "time": "27/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795780800000u64
        },
        "pathParameters": call.path_parameters_json(),
        "body": call.body,
        "isBase64Encoded": call.base64
    })
}

fn v2_route_key(call: &Call) -> String {
    match call.path_parameters {
        Some(_) => "POST /management/v1/projects/{projectId}/apps/{appId}/oidc_config/_generate_client_secret".into(),
        None => "$default".into(),
    }
}

/// The request as the Lambda runtime would hand it to the handler.
pub fn request(event: Value) -> Request {
    oidc_client_secret::api::request_from_event(serde_json::from_value(event).expect("event deserializes"))
}

/// An HTTP API (v2) event without an authorizer, to adjust before use.
pub fn http_v2_event(call: &Call) -> Value {
    http_v2_event_with(call, None)
}

/// An HTTP API (v2) event with the given `requestContext.authorizer`.
pub fn http_v2_event_with(call: &Call, authorizer: Option<Value>) -> Value {
    v2_event(call, authorizer.unwrap_or(Value::Null), &v2_route_key(call))
}

/// HTTP API (v2) with a JWT authorizer; `claims` `None` means a route without one.
pub fn http_v2_jwt(call: &Call, claims: Option<Value>) -> Request {
    let authorizer = match claims {
        Some(claims) => json!({"jwt": {"claims": claims, "scopes": null}}),
        None => Value::Null,
    };
    request(v2_event(call, authorizer, &v2_route_key(call)))
}

/// HTTP API (v2) with a Lambda authorizer that returned `context`.
pub fn http_v2_lambda(call: &Call, context: Value) -> Request {
    request(v2_event(call, json!({"lambda": context}), &v2_route_key(call)))
}

/// REST API (v1); `authorizer` is `{"claims": {...}}` (Cognito/JWT) or a Lambda authorizer's context.
pub fn rest_v1(call: &Call, authorizer: Value) -> Request {
    request(rest_v1_event(call, authorizer))
}

pub fn rest_v1_event(call: &Call, authorizer: Value) -> Value {
    let (headers, multi) = call.multi_headers();
    let resource = match call.path_parameters {
        Some(_) => "/management/v1/projects/{projectId}/apps/{appId}/oidc_config/_generate_client_secret",
        None => "/{proxy+}",
    };
    json!({
        "resource": resource,
        "path": call.path,
        "httpMethod": call.method,
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": call.path_parameters_json(),
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "1234567890",
            "authorizer": authorizer,
            "domainName": "1234567890.execute-api.eu-central-1.amazonaws.com",
            "httpMethod": call.method,
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
            "path": format!("/prod{}", call.path),
            "protocol": "HTTP/1.1",
            "requestId": format!("req-{:08x}", rand::random::<u32>()),
            "requestTime": "27/Nov/2026:12:00:00 +0000",
            "requestTimeEpoch": 1795780800000u64,
            "resourceId": "abc123",
            "resourcePath": resource,
            "stage": "prod"
        },
        "body": call.body,
        "isBase64Encoded": call.base64
    })
}

/// An Application Load Balancer request: no authorizer, so no identity.
pub fn alb(call: &Call) -> Request {
    request(alb_event(call))
}

pub fn alb_event(call: &Call) -> Value {
    let (headers, _) = call.multi_headers();
    json!({
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/oidc/6d0ecf831eec9f09"}},
        "httpMethod": call.method,
        "path": call.path,
        "queryStringParameters": {},
        "headers": headers,
        "body": call.body.clone().unwrap_or_default(),
        "isBase64Encoded": call.base64
    })
}

// ---- answers ----

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
}

pub async fn send<S: Store>(service: &Service<S>, request: Request) -> Answer {
    let response = service.handle(request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.body() {
        Body::Text(text) => text.clone(),
        other => panic!("expected a text body, got {other:?}"),
    };
    let json = serde_json::from_str(&body).expect("every answer is JSON");
    Answer { status, headers, json }
}

impl Answer {
    pub fn secret(&self) -> &str {
        assert_eq!(self.status, 200, "expected success, got {}", self.json);
        self.json["clientSecret"].as_str().expect("clientSecret")
    }

    pub fn sequence(&self) -> u64 {
        self.json["details"]["sequence"].as_str().expect("sequence is a string").parse().unwrap()
    }

    /// Asserts ZITADEL's envelope exactly: status, code, and one detail with id and text.
    pub fn assert_error(&self, status: u16, code: u32, id: &str, text: &str) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(
            self.json,
            json!({
                "code": code,
                "message": format!("{text} ({id})"),
                "details": [{"@type": "type.googleapis.com/zitadel.v1.ErrorDetail", "id": id, "message": text}]
            })
        );
        assert!(self.json.get("clientSecret").is_none());
        self.assert_common_headers();
    }

    /// Asserts a code-3 REQ-invalid whose message names `field`.
    pub fn assert_invalid(&self, field: &str) {
        let text = self.json["details"][0]["message"].as_str().unwrap_or_default().to_owned();
        assert!(text.contains(field), "message {text:?} should name {field}");
        self.assert_error(400, 3, "REQ-invalid", &text);
    }

    pub fn assert_common_headers(&self) {
        for (name, value) in [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("pragma", "no-cache"),
            ("x-content-type-options", "nosniff"),
        ] {
            assert_eq!(self.headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "header {name}");
        }
    }
}

// ---- Secrets Manager (moto's server, started by `make test`) ----

pub const ROTATION_LAMBDA_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:rotate-secret";

pub async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_some(),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER is not set: run the tests with `make test`, which starts moto's server"
    );
    aws_sdk_secretsmanager::Client::new(&oidc_client_secret::aws::sdk_config().await)
}

/// Creates a secret naming an app, with no client secret yet; returns its ARN.
pub async fn create_app_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    org: &str,
    project: &str,
    app: &str,
) -> String {
    let value = json!({"orgId": org, "projectId": project, "appId": app, "clientId": "client-1", "clientSecret": ""});
    let output = secrets
        .create_secret()
        .name(format!("oidc/{app}-{:08x}", rand::random::<u32>()))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create secret in moto");
    output.arn.expect("arn")
}

/// Starts a rotation as `aws secretsmanager rotate-secret` would, and returns the new
/// version's token (staged AWSPENDING). moto cannot call the Lambda, so it answers
/// ResourceNotFound, but it has enabled rotation (given a schedule) and staged the token.
pub async fn start_rotation(secrets: &aws_sdk_secretsmanager::Client, arn: &str) -> String {
    let schedule = aws_sdk_secretsmanager::types::RotationRulesType::builder().automatically_after_days(30).build();
    let _ = secrets
        .rotate_secret()
        .secret_id(arn)
        .rotation_lambda_arn(ROTATION_LAMBDA_ARN)
        .rotation_rules(schedule)
        .rotate_immediately(true)
        .send()
        .await;
    let described = secrets.describe_secret().secret_id(arn).send().await.expect("describe secret");
    assert_eq!(described.rotation_enabled, Some(true));
    let versions = described.version_ids_to_stages.unwrap_or_default();
    let pending: Vec<&String> =
        versions.iter().filter(|(_, stages)| stages.iter().any(|s| s == "AWSPENDING")).map(|(id, _)| id).collect();
    assert_eq!(pending.len(), 1, "one pending version: {versions:?}");
    pending[0].clone()
}

/// What Secrets Manager does once the rotation function has finished: it takes the
/// AWSPENDING label off the new version. moto never ran the function, so it does not.
pub async fn complete_rotation(secrets: &aws_sdk_secretsmanager::Client, arn: &str, token: &str) {
    secrets
        .update_secret_version_stage()
        .secret_id(arn)
        .version_stage("AWSPENDING")
        .remove_from_version_id(token)
        .send()
        .await
        .expect("remove AWSPENDING");
}

/// The JSON value of the version with `stage`, if it has one.
pub async fn stage_value(secrets: &aws_sdk_secretsmanager::Client, arn: &str, stage: &str) -> Option<Value> {
    let output = secrets.get_secret_value().secret_id(arn).version_stage(stage).send().await.ok()?;
    output.secret_string.map(|s| serde_json::from_str(&s).expect("JSON secret value"))
}
