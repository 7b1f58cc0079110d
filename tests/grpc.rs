//! gRPC-web and Connect at `/zitadel.management.v1.ManagementService/RegenerateOIDCClientSecret`,
//! through the real handler against DynamoDB Local: the same use case, identity,
//! permissions, error ids and store as the REST path, and raw frames that are malformed
//! in every way a client or an attacker can make them, each `grpc-status: 3` with nothing
//! written. (Published clients drive the release binary in `tests/clients.rs`.)

mod support;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use lambda_http::Body;
use oidc_client_secret::api::proto::{
    ErrorDetail, RegenerateOidcClientSecretRequest, RegenerateOidcClientSecretResponse, Status,
};
use oidc_client_secret::regenerate::APP_WRITE_PERMISSION;
use oidc_client_secret::secret::verify_client_secret;
use prost::Message;
use serde_json::{Value, json};
use support::*;
use time::OffsetDateTime;

const PATH: &str = "/zitadel.management.v1.ManagementService/RegenerateOIDCClientSecret";

fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn message(project: &str, app: &str) -> Vec<u8> {
    RegenerateOidcClientSecretRequest { project_id: project.into(), app_id: app.into() }.encode_to_vec()
}

/// A call at the gRPC path with `body`, sent base64-encoded as API Gateway sends binary.
fn grpc_call(content_type: &str, body: &[u8]) -> Call {
    Call {
        method: "POST".into(),
        path: PATH.into(),
        path_parameters: None,
        headers: vec![("content-type".into(), content_type.into())],
        body: Some(STANDARD.encode(body)),
        base64: true,
    }
}

/// What a gRPC-web answer says: the message (if any) and the trailers.
struct GrpcAnswer {
    response: Option<RegenerateOidcClientSecretResponse>,
    trailers: Vec<(String, String)>,
    content_type: String,
}

impl GrpcAnswer {
    fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn status(&self) -> u32 {
        self.trailer("grpc-status").expect("grpc-status").parse().unwrap()
    }

    /// grpc-status, the percent-decoded grpc-message, and the ErrorDetail in the details.
    fn assert_error(&self, code: u32, id: &str, text: &str) {
        assert_eq!(self.status(), code, "{:?}", self.trailers);
        assert!(self.response.is_none());
        let message =
            percent_encoding::percent_decode_str(self.trailer("grpc-message").unwrap()).decode_utf8().unwrap();
        assert_eq!(message, format!("{text} ({id})"));
        let details = STANDARD_NO_PAD.decode(self.trailer("grpc-status-details-bin").unwrap()).unwrap();
        let status = Status::decode(details.as_slice()).unwrap();
        assert_eq!((status.code, status.message.as_str()), (code as i32, message.as_ref()));
        assert_eq!(status.details[0].type_url, "type.googleapis.com/zitadel.v1.ErrorDetail");
        let detail = ErrorDetail::decode(status.details[0].value.as_slice()).unwrap();
        assert_eq!((detail.id.as_str(), detail.message.as_str()), (id, text));
    }
}

async fn grpc_web(f: &Fixture, call: Call, claims: Option<Value>) -> GrpcAnswer {
    let text = call.headers[0].1.contains("text");
    let response = f.service.handle(http_v2_jwt(&call, claims)).await;
    assert_eq!(response.status(), 200, "gRPC-web answers 200 and carries the status in trailers");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let bytes = match (response.body(), text) {
        (Body::Text(body), true) => STANDARD.decode(body).expect("base64 response"),
        (Body::Binary(body), false) => body.clone(),
        (other, _) => panic!("unexpected body {other:?}"),
    };
    let (mut response, mut trailers) = (None, Vec::new());
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let length = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let payload = &rest[5..5 + length];
        if rest[0] == 0x80 {
            let text = std::str::from_utf8(payload).unwrap();
            for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                let (name, value) = line.split_once(": ").expect("key: value");
                trailers.push((name.to_owned(), value.to_owned()));
            }
        } else {
            assert!(trailers.is_empty() && response.is_none(), "one message, before the trailers");
            response = Some(RegenerateOidcClientSecretResponse::decode(payload).unwrap());
        }
        rest = &rest[5 + length..];
    }
    GrpcAnswer { response, trailers, content_type }
}

#[tokio::test]
async fn grpc_web_in_both_forms_regenerates_and_shares_the_sequence_with_rest() {
    let f = fixture().await;
    let binary = grpc_web(
        &f,
        grpc_call("application/grpc-web+proto", &frame(0, &message(PROJECT, APP))),
        Some(claims(USER, ORG)),
    )
    .await;
    assert_eq!(binary.status(), 0);
    assert_eq!(binary.content_type, "application/grpc-web+proto");
    let rest = send(&f.service, http_v2_jwt(&Call::post(PROJECT, APP), Some(claims(USER, ORG)))).await;
    assert_eq!(rest.sequence(), 2, "the REST call comes after the gRPC-web one");
    let text_body = STANDARD.encode(frame(0, &message(PROJECT, APP)));
    let mut call = grpc_call("application/grpc-web-text", b"");
    call.body = Some(text_body);
    call.base64 = false;
    let text = grpc_web(&f, call, Some(claims(USER, ORG))).await;
    assert_eq!(text.content_type, "application/grpc-web-text+proto");
    let answer = text.response.expect("a response message");
    let details = answer.details.unwrap();
    assert_eq!((details.sequence, details.resource_owner.as_str()), (3, ORG));
    let stored = app(&f.store, ORG, PROJECT, APP).await;
    assert!(verify_client_secret(&stored, &answer.client_secret, OffsetDateTime::now_utc()));
    assert_eq!(details.creation_date.unwrap().seconds, stored.creation_date.unix_timestamp());
    let change = details.change_date.unwrap();
    assert!(change.seconds >= stored.creation_date.unix_timestamp() && change.nanos >= 0);
    assert_eq!(events(&f.store, ORG, PROJECT, APP).await.len(), 3);
}

#[tokio::test]
async fn every_error_row_travels_as_grpc_status_message_and_detail() {
    let f = fixture().await;
    seed_app(
        &f.store,
        oidc_client_secret::store::seed::NewApp {
            app_type: "API".into(),
            ..oidc_client_secret::store::seed::NewApp::oidc(key(ORG, PROJECT, "api-app"), "api")
        },
    )
    .await;
    seed_member(&f.store, OTHER_ORG, None, "outsider", &[APP_WRITE_PERMISSION]).await;
    let web = |project: &str, app: &str| grpc_call("application/grpc-web+proto", &frame(0, &message(project, app)));
    let cases: Vec<(Call, Option<Value>, u32, &str, &str)> = vec![
        (web(PROJECT, APP), None, 16, "AUTH-7fs1e", "Token is invalid"),
        (web("", APP), Some(claims(USER, ORG)), 3, "COMMAND-99i83", "ID missing"),
        (
            web(PROJECT, APP).org(ORG),
            Some(claims("outsider", OTHER_ORG)),
            7,
            "AUTH-5mWD2",
            "No matching permissions found",
        ),
        (web(PROJECT, "missing"), Some(claims(USER, ORG)), 5, "COMMAND-2g66f", "Application doesn't exist"),
        (web(PROJECT, "api-app"), Some(claims(USER, ORG)), 3, "COMMAND-Ghrh3", "Application is not type OIDC"),
    ];
    for (call, claims, code, id, text) in cases {
        grpc_web(&f, call, claims).await.assert_error(code, id, text);
    }
    let bad_id = grpc_web(&f, web(PROJECT, "a#b"), Some(claims(USER, ORG))).await;
    assert_eq!(bad_id.status(), 3);
    assert_eq!(app(&f.store, ORG, PROJECT, APP).await.sequence, 0, "nothing was written");
}

#[tokio::test]
async fn malformed_frames_and_messages_are_invalid_argument_and_touch_nothing() {
    let f = fixture().await;
    let before = scan(&f.store).await;
    let good = frame(0, &message(PROJECT, APP));
    let mut bad_length = good.clone();
    bad_length[4] = bad_length[4].wrapping_add(3);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", Vec::new()),
        ("short prefix", vec![0, 0]),
        ("bad length prefix", bad_length),
        ("compressed flag", frame(1, &message(PROJECT, APP))),
        ("a trailer frame", frame(0x80, b"grpc-status: 0\r\n")),
        ("two messages", [good.clone(), good.clone()].concat()),
        ("bad protobuf", frame(0, b"\x0a\xff\xff\xff\xff")),
        ("wrong wire type", frame(0, b"\x08\x01")),
    ];
    for (what, body) in cases {
        let answer = grpc_web(&f, grpc_call("application/grpc-web+proto", &body), Some(claims(USER, ORG))).await;
        assert_eq!(answer.status(), 3, "{what}: {:?}", answer.trailers);
    }
    let mut text = grpc_call("application/grpc-web-text+proto", b"");
    text.body = Some("%%% not base64 %%%".into());
    text.base64 = false;
    assert_eq!(grpc_web(&f, text, Some(claims(USER, ORG))).await.status(), 3, "text form that is not base64");
    assert_eq!(scan(&f.store).await, before, "nothing was written");
}

#[tokio::test]
async fn another_method_and_native_grpc_are_unimplemented() {
    let f = fixture().await;
    let mut other = grpc_call("application/grpc-web+proto", &frame(0, &message(PROJECT, APP)));
    other.path = "/zitadel.management.v1.ManagementService/RemoveApp".into();
    let answer = grpc_web(&f, other, Some(claims(USER, ORG))).await;
    assert_eq!(answer.status(), 12);
    let native = grpc_call("application/grpc", &frame(0, &message(PROJECT, APP)));
    let response = f.service.handle(http_v2_jwt(&native, Some(claims(USER, ORG)))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "12");
    let message = response.headers()["grpc-message"].to_str().unwrap();
    assert!(message.contains("gRPC-web"), "{message}");
    assert_eq!(app(&f.store, ORG, PROJECT, APP).await.sequence, 0);
}

#[tokio::test]
async fn connect_json_and_proto_regenerate_and_errors_are_connect_json() {
    let f = fixture().await;
    let mut json_call = grpc_call("application/json", b"");
    json_call.body = Some(json!({"projectId": PROJECT, "appId": APP}).to_string());
    json_call.base64 = false;
    let answer = send(&f.service, http_v2_jwt(&json_call, Some(claims(USER, ORG)))).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.sequence(), 1);
    assert_eq!(answer.json["details"]["resourceOwner"], ORG);

    let proto_call = grpc_call("application/proto", &message(PROJECT, APP));
    let response = f.service.handle(http_v2_jwt(&proto_call, Some(claims(USER, ORG)))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/proto");
    let decoded = RegenerateOidcClientSecretResponse::decode(response.body().as_ref()).unwrap();
    assert_eq!(decoded.details.unwrap().sequence, 2);
    let stored = app(&f.store, ORG, PROJECT, APP).await;
    assert!(verify_client_secret(&stored, &decoded.client_secret, OffsetDateTime::now_utc()));

    json_call.body = Some(json!({"projectId": PROJECT, "appId": "missing"}).to_string());
    let missing = send(&f.service, http_v2_jwt(&json_call, Some(claims(USER, ORG)))).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["code"], "not_found");
    assert_eq!(missing.json["message"], "Application doesn't exist (COMMAND-2g66f)");
    assert_eq!(missing.json["details"][0]["type"], "zitadel.v1.ErrorDetail");
    let value = STANDARD_NO_PAD.decode(missing.json["details"][0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(ErrorDetail::decode(value.as_slice()).unwrap().id, "COMMAND-2g66f");
    let unauthenticated = send(&f.service, http_v2_jwt(&json_call, None)).await;
    assert_eq!((unauthenticated.status, &unauthenticated.json["code"]), (401, &json!("unauthenticated")));
}

const V2_PATH: &str = "/zitadel.application.v2.ApplicationService/GenerateClientSecret";

/// A v2 call over Connect JSON, the curl-able form, with the caller's claims.
async fn v2_connect(f: &Fixture, body: Value, claims: Value, org_header: Option<&str>) -> Answer {
    let mut call = grpc_call("application/json", b"");
    call.path = V2_PATH.into();
    call.body = Some(body.to_string());
    call.base64 = false;
    if let Some(org) = org_header {
        call = call.org(org);
    }
    send(&f.service, http_v2_jwt(&call, Some(claims))).await
}

#[tokio::test]
async fn the_v2_door_finds_the_org_from_the_project_and_serves_oidc_and_api_apps() {
    use oidc_client_secret::api::proto::{ClientSecretResponse, GenerateClientSecretRequest};
    use oidc_client_secret::store::seed::NewApp;
    let f = fixture().await;
    seed_app(&f.store, NewApp { app_type: "API".into(), ..NewApp::oidc(key(ORG, PROJECT, "api-1"), "c-api-1") }).await;
    // Connect JSON: `applicationId`, `projectId`; the answer `clientSecret`, `creationDate`.
    let answer = v2_connect(&f, json!({"applicationId": APP, "projectId": PROJECT}), claims(USER, ORG), None).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let object = answer.json.as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["clientSecret", "creationDate"]);
    let stored = app(&f.store, ORG, PROJECT, APP).await;
    assert!(verify_client_secret(&stored, answer.json["clientSecret"].as_str().unwrap(), OffsetDateTime::now_utc()));
    assert_eq!(stored.sequence, 1, "the same sequence as every other door");
    // An API app, through gRPC-web frames built from ZITADEL's field numbers (application_id = 1, project_id = 2).
    let request = GenerateClientSecretRequest { application_id: "api-1".into(), project_id: PROJECT.into() };
    let mut call = grpc_call("application/grpc-web+proto", &frame(0, &request.encode_to_vec()));
    call.path = V2_PATH.into();
    let response = f.service.handle(http_v2_jwt(&call, Some(claims(USER, ORG)))).await;
    assert_eq!(response.status(), 200);
    let body = match response.body() {
        Body::Binary(bytes) => bytes.clone(),
        other => panic!("{other:?}"),
    };
    let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    let decoded = ClientSecretResponse::decode(&body[5..5 + length]).unwrap();
    let trailers = std::str::from_utf8(&body[10 + length..]).unwrap();
    assert_eq!(trailers, "grpc-status: 0\r\n");
    let stored = app(&f.store, ORG, PROJECT, "api-1").await;
    assert!(verify_client_secret(&stored, &decoded.client_secret, OffsetDateTime::now_utc()));
    // creation_date is the change's time (ZITADEL's secret-changed event date).
    let changed = decoded.creation_date.unwrap().seconds;
    assert!((changed - OffsetDateTime::now_utc().unix_timestamp()).abs() <= 5, "{changed}");
    // v2's own ids: an empty id, and an app that does not exist (or is SAML).
    let answer = v2_connect(&f, json!({"applicationId": "", "projectId": PROJECT}), claims(USER, ORG), None).await;
    assert_eq!((answer.status, answer.json["message"].as_str()), (400, Some("ID missing (COMMAND-KJ29c)")));
    let answer = v2_connect(&f, json!({"applicationId": "a#b", "projectId": PROJECT}), claims(USER, ORG), None).await;
    let text = "invalid applicationId: must be 1 to 200 characters from A-Z a-z 0-9 _ - . @ (REQ-invalid)";
    assert_eq!((answer.status, answer.json["message"].as_str()), (400, Some(text)), "the message names v2's field");
    seed_app(&f.store, NewApp { app_type: "SAML".into(), ..NewApp::oidc(key(ORG, PROJECT, "saml-1"), "c-saml-1") })
        .await;
    for app_id in ["missing", "saml-1"] {
        let answer =
            v2_connect(&f, json!({"applicationId": app_id, "projectId": PROJECT}), claims(USER, ORG), None).await;
        assert_eq!(
            (answer.status, answer.json["message"].as_str()),
            (404, Some("Application doesn't exist (COMMAND-Kd92s)")),
            "{app_id}"
        );
    }
}

#[tokio::test]
async fn a_v2_caller_without_permission_learns_nothing_of_another_orgs_app() {
    use oidc_client_secret::store::seed::NewApp;
    let f = fixture().await;
    // org-b owns proj-b and its app; user-1 has permission in org-a only.
    seed_app(&f.store, NewApp::oidc(key(OTHER_ORG, "proj-b", APP), "c-foreign")).await;
    let before = scan(&f.store).await;
    let not_found = "Application doesn't exist (COMMAND-Kd92s)";
    for (project, app_id, header) in [
        ("proj-b", APP, None),          // exists in org-b
        ("proj-b", "missing", None),    // not in org-b
        ("no-such-project", APP, None), // no org owns the project
        ("proj-b", APP, Some(ORG)),     // the header plays no part
    ] {
        let answer =
            v2_connect(&f, json!({"applicationId": app_id, "projectId": project}), claims(USER, ORG), header).await;
        assert_eq!((answer.status, answer.json["message"].as_str()), (404, Some(not_found)), "{project}/{app_id}");
    }
    assert_eq!(scan(&f.store).await, before, "nothing was written");
    // A member of org-b gets through, whatever its header says.
    seed_member(&f.store, OTHER_ORG, None, "their-admin", &[APP_WRITE_PERMISSION]).await;
    let answer = v2_connect(
        &f,
        json!({"applicationId": APP, "projectId": "proj-b"}),
        claims("their-admin", OTHER_ORG),
        Some(ORG),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(app(&f.store, OTHER_ORG, "proj-b", APP).await.sequence, 1);
}

const V2BETA_PATH: &str = "/zitadel.app.v2beta.AppService/RegenerateClientSecret";

/// A v2beta call: Connect JSON at the gRPC path, or its REST mapping (the path names the
/// app; the body holds the project and the type).
async fn v2beta(f: &Fixture, rest: bool, body: Value, claims: Value) -> Answer {
    let mut call = grpc_call("application/json", b"");
    call.base64 = false;
    if rest {
        let app_id = body["applicationId"].as_str().unwrap_or_default();
        call.path = format!("/v2beta/applications/{app_id}/generate_client_secret");
    } else {
        call.path = V2BETA_PATH.into();
    }
    call.body = Some(body.to_string());
    send(&f.service, http_v2_jwt(&call, Some(claims))).await
}

#[tokio::test]
async fn the_v2beta_door_takes_the_type_from_the_message_and_names_no_org() {
    use oidc_client_secret::api::proto::{AppType, ClientSecretResponse, RegenerateClientSecretRequest};
    use oidc_client_secret::store::seed::NewApp;
    let f = fixture().await;
    seed_app(&f.store, NewApp { app_type: "API".into(), ..NewApp::oidc(key(ORG, PROJECT, "api-1"), "c-api-1") }).await;
    seed_app(&f.store, NewApp::oidc(key(OTHER_ORG, "proj-b", APP), "c-foreign")).await;
    for rest in [true, false] {
        let body = json!({"projectId": PROJECT, "applicationId": APP, "isOidc": true});
        let answer = v2beta(&f, rest, body, claims(USER, ORG)).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        let keys: Vec<&String> = answer.json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["clientSecret", "creationDate"]);
        let stored = app(&f.store, ORG, PROJECT, APP).await;
        assert!(verify_client_secret(
            &stored,
            answer.json["clientSecret"].as_str().unwrap(),
            OffsetDateTime::now_utc()
        ));
        let answer =
            v2beta(&f, rest, json!({"projectId": PROJECT, "applicationId": "api-1", "isApi": true}), claims(USER, ORG))
                .await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        for (body, status, message) in [
            (json!({"projectId": PROJECT, "applicationId": APP}), 400, "unknown app type (APP-aLWIzw)"),
            (
                json!({"projectId": PROJECT, "applicationId": APP, "isOidc": true, "isApi": true}),
                400,
                "unknown app type (APP-aLWIzw)",
            ),
            (
                json!({"projectId": PROJECT, "applicationId": APP, "isApi": true}),
                400,
                "Application is not type API (COMMAND-aeH4)",
            ),
            (
                json!({"projectId": PROJECT, "applicationId": "api-1", "isOidc": true}),
                400,
                "Application is not type OIDC (COMMAND-Ghrh3)",
            ),
            (json!({"projectId": "", "applicationId": APP, "isOidc": true}), 400, "ID missing (COMMAND-99i83)"),
            (
                json!({"projectId": PROJECT, "applicationId": "missing", "isOidc": true}),
                404,
                "Application doesn't exist (COMMAND-2g66f)",
            ),
        ] {
            let answer = v2beta(&f, rest, body.clone(), claims(USER, ORG)).await;
            assert_eq!((answer.status, answer.json["message"].as_str()), (status, Some(message)), "{body}");
        }
        // The type is checked before the ids, as ZITADEL's handler does; identity first.
        let answer = v2beta(&f, rest, json!({"projectId": "", "applicationId": APP}), claims(USER, ORG)).await;
        assert_eq!(answer.json["message"].as_str(), Some("unknown app type (APP-aLWIzw)"));
    }
    assert_eq!(app(&f.store, ORG, PROJECT, APP).await.sequence, 2, "REST and Connect, one sequence");
    // A stranger to org-b: the same "doesn't exist" whether the app, the project or
    // neither exists, and nothing written.
    let before = scan(&f.store).await;
    for rest in [true, false] {
        for (project, app_id) in [("proj-b", APP), ("proj-b", "missing"), ("no-such-project", APP)] {
            let body = json!({"projectId": project, "applicationId": app_id, "isOidc": true});
            let answer = v2beta(&f, rest, body, claims(USER, ORG)).await;
            let expected = (404, Some("Application doesn't exist (COMMAND-2g66f)"));
            assert_eq!((answer.status, answer.json["message"].as_str()), expected, "{project}/{app_id}");
        }
    }
    assert_eq!(scan(&f.store).await, before, "nothing was written");
    // gRPC-web frames from ZITADEL's field numbers; a oneof set to false names no type.
    for (app_type, app_id, expected) in
        [(Some(AppType::IsApi(true)), "api-1", 0), (Some(AppType::IsOidc(false)), APP, 3), (None, APP, 3)]
    {
        let request =
            RegenerateClientSecretRequest { project_id: PROJECT.into(), application_id: app_id.into(), app_type };
        let mut call = grpc_call("application/grpc-web+proto", &frame(0, &request.encode_to_vec()));
        call.path = V2BETA_PATH.into();
        if expected == 0 {
            let response = f.service.handle(http_v2_jwt(&call, Some(claims(USER, ORG)))).await;
            let body = match response.body() {
                Body::Binary(bytes) => bytes.clone(),
                other => panic!("{other:?}"),
            };
            let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
            let decoded = ClientSecretResponse::decode(&body[5..5 + length]).unwrap();
            assert_eq!(std::str::from_utf8(&body[10 + length..]).unwrap(), "grpc-status: 0\r\n");
            let stored = app(&f.store, ORG, PROJECT, "api-1").await;
            assert!(verify_client_secret(&stored, &decoded.client_secret, OffsetDateTime::now_utc()));
        } else {
            grpc_web(&f, call, Some(claims(USER, ORG))).await.assert_error(3, "APP-aLWIzw", "unknown app type");
        }
    }
}
