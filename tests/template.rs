//! `template.yaml` as an operator relies on it: every alarm notifies someone, every
//! EventBridge rule has a target, the gRPC route has the REST route's authorizer, and
//! CORS lets browsers read the gRPC status. (cfn-lint and checkov run in `make test` too.)

use serde_norway::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    serde_norway::from_str(&text).expect("template.yaml parses")
}

fn resources_of<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    let resources = template["Resources"].as_mapping().expect("Resources");
    resources
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
        .map(|(name, resource)| (name.as_str().unwrap(), &resource["Properties"]))
        .collect()
}

fn non_empty_list(value: &Value) -> bool {
    value.as_sequence().is_some_and(|list| !list.is_empty())
}

#[test]
fn every_alarm_has_an_action_and_every_rule_a_target() {
    let template = template();
    let alarms = resources_of(&template, "AWS::CloudWatch::Alarm");
    let names: Vec<&str> = alarms.iter().map(|(name, _)| *name).collect();
    for expected in [
        "Api5xxRateAlarm",
        "UnavailableAlarm",
        "RegenerateErrorsAlarm",
        "RegenerateThrottlesAlarm",
        "RotateErrorsAlarm",
        "RotateThrottlesAlarm",
        "OAuthErrorsAlarm",
        "OAuthThrottlesAlarm",
    ] {
        assert!(names.contains(&expected), "{expected} is missing: {names:?}");
    }
    for (name, alarm) in &alarms {
        assert!(non_empty_list(&alarm["AlarmActions"]), "{name} has no action");
        assert!(matches!(alarm["Threshold"], Value::Tagged(_) | Value::Number(_)), "{name} has no threshold");
    }
    let rules = resources_of(&template, "AWS::Events::Rule");
    assert!(!rules.is_empty());
    for (name, rule) in &rules {
        assert!(non_empty_list(&rule["Targets"]), "{name} has no target");
    }
    let (_, rotation_failed) =
        rules.iter().find(|(name, _)| *name == "RotationFailedRule").expect("RotationFailedRule");
    assert_eq!(rotation_failed["EventPattern"]["detail"]["eventName"][0].as_str(), Some("RotationFailed"));
}

#[test]
fn the_grpc_route_shares_the_authorizer_and_cors_exposes_the_grpc_status() {
    let template = template();
    let api = &template["Resources"]["HttpApi"]["Properties"];
    assert_eq!(api["Auth"]["DefaultAuthorizer"].as_str(), Some("JwtAuthorizer"), "every route, the gRPC one too");
    let events = &template["Resources"]["RegenerateSecretFunction"]["Properties"]["Events"];
    let paths: Vec<&str> =
        events.as_mapping().unwrap().values().filter_map(|e| e["Properties"]["Path"].as_str()).collect();
    for door in oidc_client_secret::api::doors::DOORS {
        if let Some(rest) = &door.rest {
            assert!(paths.contains(&rest.resource), "{} has no REST route: {paths:?}", door.method);
        }
        let grpc = format!("{}{{method}}", door.service);
        assert!(paths.contains(&grpc.as_str()), "{} has no gRPC route: {paths:?}", door.method);
    }
    let Value::Tagged(cors) = &api["CorsConfiguration"] else {
        panic!("CorsConfiguration is conditional on the origins")
    };
    let config = &cors.value[1];
    let allowed: Vec<&str> = config["AllowHeaders"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    for header in [
        "authorization",
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "connect-protocol-version",
        "connect-timeout-ms",
        "x-zitadel-orgid",
    ] {
        assert!(allowed.contains(&header), "{header} is not allowed");
    }
    let exposed: Vec<&str> = config["ExposeHeaders"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(exposed, ["grpc-status", "grpc-message", "grpc-status-details-bin"]);
    assert_eq!(template["Parameters"]["CorsAllowedOrigins"]["Default"].as_str(), Some(""), "no origin by default");
}

const FUNCTIONS: [&str; 4] =
    ["RegenerateSecretFunction", "RotateSecretFunction", "VerifySecretFunction", "OAuthFunction"];

/// The statements of a function's inline policy.
fn statements<'a>(template: &'a Value, function: &str) -> Vec<&'a Value> {
    let policies = template["Resources"][function]["Properties"]["Policies"].as_sequence().expect("Policies");
    policies.iter().flat_map(|p| p["Statement"].as_sequence().expect("Statement").iter()).collect()
}

fn actions(statement: &Value) -> Vec<&str> {
    match &statement["Action"] {
        Value::String(one) => vec![one.as_str()],
        list => list.as_sequence().expect("Action").iter().filter_map(Value::as_str).collect(),
    }
}

/// `!Sub text` as the parser gives it.
fn sub(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged.value.as_str(),
        _ => None,
    }
}

#[test]
fn every_function_may_use_the_table_key_only_through_dynamodb() {
    let template = template();
    // The key policy delegates to IAM (the account statement), so the roles' policies are
    // what grants the key; on AWS, without them every call on the table is denied.
    let key_policy = &template["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"];
    let account = key_policy.as_sequence().unwrap().iter().find(|s| s["Sid"].as_str() == Some("AccountAdministers"));
    assert_eq!(
        sub(&account.expect("the account statement")["Principal"]["AWS"]),
        Some("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")
    );
    for function in FUNCTIONS {
        let statements = statements(&template, function);
        // The table's key, created or given (the oauth function's signing key apart).
        let kms: Vec<&&Value> = statements
            .iter()
            .filter(|s| actions(s).iter().any(|a| a.starts_with("kms:")))
            .filter(|s| !matches!(&s["Resource"], Value::Tagged(t) if t.tag == "GetAtt" && t.value.as_str() == Some("TokenSigningKey.Arn")))
            .collect();
        assert_eq!(kms.len(), 1, "{function}: one statement for the table's key");
        let grant = kms[0];
        assert_eq!(grant["Effect"].as_str(), Some("Allow"));
        let mut granted = actions(grant);
        granted.sort_unstable();
        // Only Decrypt carries the caller's identity (the table key, when it reads or
        // writes); DynamoDB encrypts and generates data keys under its own grant.
        assert_eq!(granted, ["kms:Decrypt", "kms:DescribeKey"], "{function}");
        let Value::Tagged(resource) = &grant["Resource"] else { panic!("{function}: the key, created or given") };
        assert_eq!(resource.tag, "If");
        let via = &grant["Condition"]["StringEquals"]["kms:ViaService"];
        assert_eq!(sub(via), Some("dynamodb.${AWS::Region}.amazonaws.com"), "{function}: only through DynamoDB");
    }
}

#[test]
fn functions_write_only_items_under_org_keys() {
    let template = template();
    const WRITES: [&str; 5] = [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:BatchWriteItem",
    ];
    for function in FUNCTIONS {
        let mut writes = 0;
        for statement in statements(&template, function) {
            let actions = actions(statement);
            assert!(!actions.iter().any(|a| a.ends_with(":*")), "{function}: no wildcard action");
            if actions.iter().any(|a| WRITES.contains(a)) {
                writes += 1;
                let leading = &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                let keys: Vec<&str> =
                    leading.as_sequence().expect("LeadingKeys").iter().filter_map(Value::as_str).collect();
                assert_eq!(keys, ["ORG#*"], "{function}: {actions:?}");
            }
        }
        let expected = if matches!(function, "VerifySecretFunction" | "OAuthFunction") { 0 } else { 1 };
        assert_eq!(writes, expected, "{function}: write statements");
    }
}

#[test]
fn the_function_timeout_is_the_one_the_deadlines_are_taken_from() {
    let template = template();
    let timeout = template["Globals"]["Function"]["Timeout"].as_u64();
    assert_eq!(timeout, Some(oidc_client_secret::deadline::FUNCTION_TIMEOUT.as_secs()));
    assert_eq!(template["Resources"]["RegenerateSecretFunction"]["Properties"]["Timeout"], Value::Null);
}

/// The tools' Python (`.tools/venv`), which has the SAM CLI's own `aws-sam-translator`.
fn python() -> std::process::Command {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = format!("{root}/.tools/venv/bin/python");
    assert!(std::path::Path::new(&python).exists(), "{python} is missing: run `make test` (it installs the tools)");
    let mut command = std::process::Command::new(python);
    command.current_dir(root);
    command
}

/// The template as CloudFormation gets it with these parameter values (`Name=Value`):
/// through `aws-sam-translator`, by `scripts/translate-template.py`.
fn translate(parameters: &[&str]) -> serde_json::Value {
    let output = python().arg("scripts/translate-template.py").args(parameters).output().expect("run the translator");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the translation is JSON")
}

/// The translation with the default parameters.
fn translated() -> &'static serde_json::Value {
    static TRANSLATED: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    TRANSLATED.get_or_init(|| translate(&[]))
}

/// The deployed Lambda functions of the translation.
fn translated_functions() -> Vec<(&'static str, &'static serde_json::Value)> {
    let resources = translated()["Resources"].as_object().unwrap();
    let functions: Vec<_> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
        .map(|(name, r)| (name.as_str(), &r["Properties"]))
        .collect();
    assert_eq!(functions.len(), FUNCTIONS.len());
    functions
}

#[test]
fn metrics_do_not_die_with_the_log_level() {
    let template = template();
    let allowed: Vec<&str> = template["Parameters"]["LogLevel"]["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["TRACE", "DEBUG", "INFO"], "no level above INFO, which carries the EMF lines");
    for (name, function) in translated_functions() {
        assert_eq!(function["LoggingConfig"]["ApplicationLogLevel"], serde_json::json!({"Ref": "LogLevel"}), "{name}");
        assert_eq!(function["LoggingConfig"]["LogFormat"], "JSON", "{name}: EMF needs JSON lines");
    }
    // A function that runs but sends no metrics is itself an alarm.
    let alarm = &translated()["Resources"]["MetricsMissingAlarm"]["Properties"];
    let expression = alarm["Metrics"][0]["Expression"].as_str().unwrap();
    assert!(
        expression.contains("FILL(lines, 0) == 0") && expression.contains("FILL(invocations, 0) > 0"),
        "{expression}"
    );
}

#[test]
fn system_logs_keep_lambdas_start_and_report_lines() {
    for (name, function) in translated_functions() {
        assert_eq!(function["LoggingConfig"]["SystemLogLevel"], "INFO", "{name}");
    }
}

#[test]
fn the_rotation_failed_rule_matches_only_this_stacks_secrets() {
    let rule = &translated()["Resources"]["RotationFailedRule"]["Properties"]["EventPattern"];
    assert_eq!(rule["detail"]["eventName"], serde_json::json!(["RotationFailed"]));
    let prefix = &rule["detail"]["additionalEventData"]["SecretId"][0]["prefix"]["Fn::Sub"];
    assert_eq!(
        prefix.as_str(),
        Some("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${RotationSecretPrefix}")
    );
}

#[test]
fn the_5xx_rate_alarm_waits_for_a_minimum_of_requests() {
    let template = template();
    let floor = &template["Parameters"]["Api5xxMinRequests"];
    assert!(floor["Default"].as_u64().unwrap() >= 10, "one error of a few requests must not page");
    let alarm = &translated()["Resources"]["Api5xxRateAlarm"]["Properties"];
    let expression = alarm["Metrics"][0]["Expression"]["Fn::Sub"].as_str().unwrap();
    assert_eq!(expression, "IF(requests >= ${Api5xxMinRequests}, 100 * errors / requests, 0)");
}

#[test]
fn the_hash_cost_is_limited_to_what_the_memory_size_can_hash_in_time() {
    use oidc_client_secret::config::max_hash_cost;
    let template = template();
    let memory: Vec<u32> = template["Parameters"]["MemorySize"]["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m.as_u64().unwrap() as u32)
        .collect();
    let largest = *memory.iter().max().unwrap();
    assert_eq!(template["Parameters"]["SecretHashCost"]["MaxValue"].as_u64(), Some(u64::from(max_hash_cost(largest))));
    let assertions = translated()["Rules"]["HashCostFitsMemory"]["Assertions"].as_array().unwrap();
    for size in memory.iter().filter(|&&m| max_hash_cost(m) < max_hash_cost(largest)) {
        let expected: Vec<String> = (4..=max_hash_cost(*size)).map(|c| c.to_string()).collect();
        let rule = assertions
            .iter()
            .find(|a| a["Assert"]["Fn::Or"][0]["Fn::Not"][0]["Fn::Equals"][1] == serde_json::json!(size.to_string()))
            .unwrap_or_else(|| panic!("no rule for {size} MB"));
        assert_eq!(rule["Assert"]["Fn::Or"][1]["Fn::Contains"][0], serde_json::json!(expected), "{size} MB");
        assert_eq!(rule["Assert"]["Fn::Or"][1]["Fn::Contains"][1], serde_json::json!({"Ref": "SecretHashCost"}));
    }
}

#[test]
fn the_example_secret_survives_stack_updates_and_deletes() {
    let secret = &translated()["Resources"]["ExampleSecret"];
    assert_eq!(
        (secret["DeletionPolicy"].as_str(), secret["UpdateReplacePolicy"].as_str()),
        (Some("Retain"), Some("Retain"))
    );
    let value = secret["Properties"]["SecretString"]["Fn::Sub"].as_str().unwrap();
    assert!(
        !value.contains("clientSecret") && !value.contains("clientId"),
        "an update must never rewrite the credentials: {value}"
    );
    assert!(secret["Properties"]["GenerateSecretString"].is_null());
}

#[test]
fn a_given_alarm_topic_is_told_what_it_must_allow() {
    let template = template();
    let description = template["Parameters"]["AlarmTopicArn"]["Description"].as_str().unwrap();
    assert!(
        description.contains("sns:Publish")
            && description.contains("cloudwatch.amazonaws.com")
            && description.contains("events.amazonaws.com"),
        "{description}"
    );
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md")).unwrap();
    assert!(
        docs.contains("\"Service\": [\"cloudwatch.amazonaws.com\", \"events.amazonaws.com\"]"),
        "docs/operations.md has the topic policy"
    );
}

#[test]
fn required_scopes_reach_the_function_and_default_to_none() {
    let template = template();
    assert_eq!(template["Parameters"]["RequiredScopes"]["Default"].as_str(), Some(""));
    let (_, regenerate) = translated_functions().into_iter().find(|(n, _)| *n == "RegenerateSecretFunction").unwrap();
    assert_eq!(
        regenerate["Environment"]["Variables"]["REQUIRED_SCOPES"],
        serde_json::json!({"Fn::Join": [",", {"Ref": "RequiredScopes"}]})
    );
}

#[test]
fn events_expire_only_when_a_retention_is_chosen() {
    let template = template();
    assert_eq!(template["Parameters"]["EventRetentionDays"]["Default"].as_u64(), Some(0), "kept forever by default");
    let ttl = &translated()["Resources"]["Table"]["Properties"]["TimeToLiveSpecification"];
    assert_eq!(ttl["AttributeName"], oidc_client_secret::store::dynamodb::EVENT_TTL_ATTRIBUTE);
    assert_eq!(ttl["Enabled"], true);
    // The functions that write events (the authorizer and the oauth function write nothing).
    let writers = ["RegenerateSecretFunction", "RotateSecretFunction"];
    for (name, function) in translated_functions().into_iter().filter(|(n, _)| writers.contains(n)) {
        assert_eq!(
            function["Environment"]["Variables"]["EVENT_RETENTION_DAYS"],
            serde_json::json!({"Ref": "EventRetentionDays"}),
            "{name}"
        );
    }
}

#[test]
fn the_example_rotation_starts_only_when_asked_and_then_as_a_whole_rotation() {
    let template = template();
    assert_eq!(template["Parameters"]["ExampleRotationEnabled"]["Default"].as_str(), Some("false"));
    let schedule = &translated()["Resources"]["ExampleRotationSchedule"];
    assert_eq!(schedule["Condition"], "WithExampleRotation", "not at the deploy that creates the secret");
    assert_eq!(schedule["Properties"]["RotateImmediatelyOnUpdate"], true, "a real rotation, not a lone testSecret");
    let condition = &translated()["Conditions"]["WithExampleRotation"]["Fn::And"];
    assert_eq!(condition[0], serde_json::json!({"Condition": "WithExampleSecret"}));
}

#[test]
fn the_client_secret_authorizer_is_verify_secret_with_simple_responses_and_a_ttl_parameter() {
    let template = template();
    assert_eq!(template["Parameters"]["AuthorizerCacheTtl"]["Default"].as_u64(), Some(0), "no cache by default");
    let schemes = &translated()["Resources"]["HttpApi"]["Properties"]["Body"]["components"]["securitySchemes"];
    let authorizer = &schemes["ClientSecretAuthorizer"]["x-amazon-apigateway-authorizer"];
    assert_eq!(authorizer["authorizerPayloadFormatVersion"], "2.0");
    assert_eq!(authorizer["enableSimpleResponses"], true);
    assert_eq!(authorizer["identitySource"], serde_json::json!(["$request.header.Authorization"]));
    assert_eq!(authorizer["authorizerResultTtlInSeconds"], serde_json::json!({"Ref": "AuthorizerCacheTtl"}));
    let uri = authorizer["authorizerUri"]["Fn::Sub"][1]["__FunctionArn__"].clone();
    assert_eq!(uri, serde_json::json!({"Fn::GetAtt": ["VerifySecretFunction", "Arn"]}));
    assert!(
        translated()["Resources"]["HttpApiClientSecretAuthorizerAuthorizerPermission"].is_object(),
        "API Gateway may invoke it"
    );
    // The example route is behind it, and the alarm watches its unavailable outcome.
    let paths = &translated()["Resources"]["HttpApi"]["Properties"]["Body"]["paths"];
    assert_eq!(paths["/client/whoami"]["get"]["security"], serde_json::json!([{"ClientSecretAuthorizer": []}]));
    // The authorizer reads only lookups of clients, apps, and keys that hold nothing.
    let reads = statements(&template, "VerifySecretFunction");
    let read = reads.iter().find(|s| actions(s) == ["dynamodb:GetItem"]).expect("a GetItem statement");
    let leading = &read["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
    let keys: Vec<&str> = leading.as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(keys, ["CLIENT#*", "ORG#*", "NOTHING#*", "WARM-UP"]);
    let alarm = &template["Resources"]["AuthenticationsUnavailableAlarm"]["Properties"];
    assert_eq!(alarm["MetricName"].as_str(), Some("Authentications"));
    assert_eq!(alarm["Dimensions"][1]["Value"].as_str(), Some("unavailable"));
}

/// The statements of every policy the translation gives a role, by role: its inline
/// policies and the `AWS::IAM::Policy` resources attached to it.
fn role_statements(translation: &serde_json::Value) -> Vec<(String, &serde_json::Value)> {
    let mut found = Vec::new();
    for (name, resource) in translation["Resources"].as_object().unwrap() {
        let documents: Vec<(String, &serde_json::Value)> = match resource["Type"].as_str() {
            Some("AWS::IAM::Role") => resource["Properties"]["Policies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| (name.clone(), &p["PolicyDocument"]))
                .collect(),
            Some("AWS::IAM::Policy") => resource["Properties"]["Roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|role| (role["Ref"].as_str().unwrap().to_owned(), &resource["Properties"]["PolicyDocument"]))
                .collect(),
            _ => continue,
        };
        for (role, document) in documents {
            found.extend(document["Statement"].as_array().unwrap().iter().map(|s| (role.clone(), s)));
        }
    }
    found
}

fn json_actions(statement: &serde_json::Value) -> Vec<&str> {
    match &statement["Action"] {
        serde_json::Value::String(one) => vec![one.as_str()],
        list => list.as_array().unwrap().iter().filter_map(serde_json::Value::as_str).collect(),
    }
}

#[test]
fn the_example_rotation_waits_for_the_rotation_functions_log_group_and_permissions() {
    let template = template();
    let schedule = &template["Resources"]["ExampleRotationSchedule"];
    let depends: Vec<&str> = schedule["DependsOn"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    for needed in ["RotateSecretLogs", "RotateSecretPermission", "RotateSecretSecretsPolicy"] {
        assert!(depends.contains(&needed), "{needed}: {depends:?}");
    }
    let logs = &template["Resources"]["RotateSecretLogs"]["Properties"]["LogGroupName"];
    assert_eq!(sub(logs), Some("/aws/lambda/${RotateSecretFunction}"), "the group Lambda would create itself");
    let translated = &translated()["Resources"]["ExampleRotationSchedule"]["DependsOn"];
    assert!(translated.as_array().unwrap().contains(&serde_json::json!("RotateSecretLogs")), "{translated}");
}

#[test]
fn kms_key_arn_takes_a_key_arn_or_nothing() {
    let template = template();
    let pattern = template["Parameters"]["KmsKeyArn"]["AllowedPattern"].as_str().expect("an AllowedPattern");
    assert_eq!(translated()["Parameters"]["KmsKeyArn"]["AllowedPattern"], pattern);
    let candidates = [
        ("", true),
        ("arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", true),
        ("arn:aws-cn:kms:cn-north-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab", true),
        ("arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", true),
        ("alias/oidc-client-secret", false),
        ("arn:aws:kms:eu-central-1:123456789012:alias/oidc-client-secret", false),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", false),
        ("arn:aws:kms:eu-central-1:12345678901:key/1234abcd", false),
        ("arn:aws:s3:::bucket", false),
        (" arn:aws:kms:eu-central-1:123456789012:key/1234abcd", false),
    ];
    assert_allowed_pattern(pattern, &candidates);
}

/// Each value is allowed by an `AllowedPattern` or not, as expected. CloudFormation matches
/// the whole value; Python's `re.fullmatch` does the same.
fn assert_allowed_pattern(pattern: &str, candidates: &[(&str, bool)]) {
    let script =
        "import json, re, sys\np, vs = json.load(sys.stdin)\nprint(json.dumps([bool(re.fullmatch(p, v)) for v in vs]))";
    let values: Vec<&str> = candidates.iter().map(|(v, _)| *v).collect();
    let mut child = python()
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(serde_json::json!([pattern, values]).to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let matched: Vec<bool> = serde_json::from_slice(&output.stdout).expect("python answered");
    for ((value, expected), matched) in candidates.iter().zip(matched) {
        assert_eq!(matched, *expected, "{value:?}");
    }
}

/// Whether each Lambda function of `translation` is traced, and each function role has
/// X-Ray's write policy.
fn tracing_of(translation: &serde_json::Value) -> (Vec<bool>, Vec<bool>) {
    let resources = translation["Resources"].as_object().unwrap();
    let traced = resources
        .values()
        .filter(|r| r["Type"] == "AWS::Lambda::Function")
        .map(|f| !f["Properties"]["TracingConfig"].is_null())
        .collect();
    let xray = resources
        .iter()
        .filter(|(name, r)| r["Type"] == "AWS::IAM::Role" && name.ends_with("FunctionRole"))
        .map(|(_, role)| {
            let managed = role["Properties"]["ManagedPolicyArns"].as_array().unwrap();
            managed.iter().any(|arn| arn.as_str().is_some_and(|a| a.contains("AWSXray")))
        })
        .collect();
    (traced, xray)
}

#[test]
fn tracing_off_attaches_no_xray_policy_and_on_traces_every_function() {
    let template = template();
    let tracing = &template["Parameters"]["Tracing"];
    assert_eq!(tracing["Default"].as_str(), Some("Disabled"));
    let allowed: Vec<&str> = tracing["AllowedValues"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(allowed, ["Active", "Disabled"]);
    let (traced, xray) = tracing_of(translated());
    assert_eq!(traced, vec![false; FUNCTIONS.len()], "off: no function traced");
    assert_eq!(xray, vec![false; FUNCTIONS.len()], "off: no role may write to X-Ray");
    for (_, statement) in role_statements(translated()) {
        assert!(!json_actions(statement).iter().any(|a| a.starts_with("xray:")), "{statement}");
    }
    let (traced, xray) = tracing_of(&translate(&["Tracing=Active"]));
    assert_eq!(traced, vec![true; FUNCTIONS.len()], "on: every function traced");
    assert_eq!(xray, vec![true; FUNCTIONS.len()], "on: every role may send its segments");
}

/// The keys each function reads, by the first characters of their partition key.
const READ_KEYS: [(&str, &[&str]); 4] = [
    ("RegenerateSecretFunction", &["ORG#*", "PROJECT#*", "WARM-UP"]),
    ("RotateSecretFunction", &["ORG#*", "WARM-UP"]),
    ("VerifySecretFunction", &["CLIENT#*", "ORG#*", "NOTHING#*", "WARM-UP"]),
    // The client check is verify-secret's, and introspection reads the token's app.
    ("OAuthFunction", &["CLIENT#*", "ORG#*", "NOTHING#*", "WARM-UP"]),
];

#[test]
fn every_dynamodb_statement_is_bound_by_its_leading_keys_with_a_null_guard() {
    let template = template();
    for (function, keys) in READ_KEYS {
        let mut reads = 0;
        for statement in statements(&template, function) {
            let actions = actions(statement);
            if !actions.iter().any(|a| a.starts_with("dynamodb:")) {
                continue;
            }
            let condition = &statement["Condition"];
            let leading: Vec<&str> = condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{function} {actions:?}: no LeadingKeys"))
                .iter()
                .filter_map(Value::as_str)
                .collect();
            // ForAllValues holds for a request without the key: the Null guard requires it.
            assert_eq!(condition["Null"]["dynamodb:LeadingKeys"].as_str(), Some("false"), "{function} {actions:?}");
            if actions.iter().any(|a| a.ends_with("GetItem")) {
                reads += 1;
                assert_eq!(leading, keys, "{function}: the keys it reads");
            }
        }
        assert_eq!(reads, 1, "{function}: one read statement");
    }
    // As AWS gets them: every statement with a DynamoDB action, in every role's policies.
    let mut bound = 0;
    for (role, statement) in role_statements(translated()) {
        if !json_actions(statement).iter().any(|a| a.starts_with("dynamodb:")) {
            continue;
        }
        let condition = &statement["Condition"];
        let leading = condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"].as_array();
        assert!(leading.is_some_and(|l| !l.is_empty()), "{role}: {statement}");
        assert_eq!(condition["Null"]["dynamodb:LeadingKeys"], "false", "{role}: {statement}");
        bound += 1;
    }
    assert_eq!(bound, 6, "four reads and two writes");
}

#[test]
fn the_key_lets_aws_services_use_it_only_for_this_accounts_logs_alarms_and_rules() {
    let template = template();
    let statements = template["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"].as_sequence().unwrap();
    let services: Vec<&Value> = statements.iter().filter(|s| !s["Principal"]["Service"].is_null()).collect();
    assert_eq!(services.len(), 2, "the logs statement and the alarms and rules statement");
    for statement in &services {
        assert!(statement["Condition"].as_mapping().is_some_and(|c| !c.is_empty()), "{statement:?}");
    }
    let publish = statements.iter().find(|s| s["Sid"].as_str() == Some("AlarmsAndEventsPublish")).unwrap();
    let Value::Tagged(account) = &publish["Condition"]["StringEquals"]["aws:SourceAccount"] else {
        panic!("aws:SourceAccount is the stack's account")
    };
    assert!(account.tag == "Ref" && account.value.as_str() == Some("AWS::AccountId"), "{account:?}");
    let sources: Vec<Option<&str>> =
        publish["Condition"]["ArnLike"]["aws:SourceArn"].as_sequence().unwrap().iter().map(sub).collect();
    assert_eq!(
        sources,
        [
            Some("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"),
            Some("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/*"),
        ]
    );
    let translated = translated()["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"].as_array().unwrap();
    let publish = translated.iter().find(|s| s["Sid"] == "AlarmsAndEventsPublish").unwrap();
    assert_eq!(publish["Condition"]["StringEquals"]["aws:SourceAccount"], serde_json::json!({"Ref": "AWS::AccountId"}));
    assert_eq!(publish["Condition"]["ArnLike"]["aws:SourceArn"].as_array().map(Vec::len), Some(2));
    let logs = translated.iter().find(|s| s["Sid"] == "LogsEncrypt").unwrap();
    assert!(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].is_object(), "{logs}");
}

#[test]
fn rotate_secret_reaches_only_the_secrets_it_rotates_and_only_they_invoke_it() {
    let prefix =
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${RotationSecretPrefix}*";
    let mut granted = 0;
    for (role, statement) in role_statements(translated()) {
        if !json_actions(statement).iter().any(|a| a.starts_with("secretsmanager:")) {
            continue;
        }
        granted += 1;
        assert_eq!(role, "RotateSecretFunctionRole");
        assert_eq!(statement["Resource"]["Fn::Sub"], prefix);
        // The secret's own rotation function must be this one.
        let rotator = &statement["Condition"]["StringEquals"]["secretsmanager:resource/AllowRotationLambdaArn"];
        assert_eq!(rotator, &serde_json::json!({"Fn::GetAtt": ["RotateSecretFunction", "Arn"]}), "{statement}");
    }
    assert_eq!(granted, 1, "one statement grants the rotation protocol");
    let permission = &translated()["Resources"]["RotateSecretPermission"]["Properties"];
    assert_eq!(permission["Principal"], "secretsmanager.amazonaws.com");
    assert_eq!(permission["SourceAccount"], serde_json::json!({"Ref": "AWS::AccountId"}));
    assert_eq!(permission["SourceArn"]["Fn::Sub"], prefix, "only the secrets under the prefix");
}

#[test]
fn api_gateway_may_invoke_the_functions_only_from_this_api() {
    let resources = translated()["Resources"].as_object().unwrap();
    let permissions: Vec<(&String, &serde_json::Value)> = resources
        .iter()
        .filter(|(_, r)| {
            r["Type"] == "AWS::Lambda::Permission" && r["Properties"]["Principal"] == "apigateway.amazonaws.com"
        })
        .map(|(name, r)| (name, &r["Properties"]))
        .collect();
    assert!(!permissions.is_empty());
    for (name, permission) in &permissions {
        let source = &permission["SourceArn"]["Fn::Sub"];
        let api = &source[1]["__ApiId__"]["Ref"];
        assert!(api == "HttpApi" || api == "ExampleResourceApi", "{name}: {permission}");
        assert!(
            source[0]
                .as_str()
                .unwrap()
                .starts_with("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${__ApiId__}/")
        );
    }
    // The authorizer: only as one of this API's authorizers, never from a route or another API.
    let (_, authorizer) = permissions
        .iter()
        .find(|(_, p)| p["FunctionName"] == serde_json::json!({"Fn::GetAtt": ["VerifySecretFunction", "Arn"]}))
        .expect("the authorizer's permission");
    let pattern = authorizer["SourceArn"]["Fn::Sub"][0].as_str().unwrap();
    assert!(pattern.ends_with("${__ApiId__}/authorizers/*"), "{pattern}");
    // The docs' permission for an API of another stack names its authorizer too.
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/verification.md")).unwrap();
    assert!(docs.contains("SourceArn: !Sub arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${MyApi}/authorizers/${MyAuthorizer}"), "docs/verification.md");
}

/// `!If [WithIssuer, Issuer, the API's own URL]`, as the translation writes it: the tokens'
/// issuer, the one the example API's JWT authorizer must trust.
fn issuer_expression() -> serde_json::Value {
    serde_json::json!({"Fn::If": ["WithIssuer", {"Ref": "Issuer"},
        {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}]})
}

#[test]
fn the_token_signing_key_is_an_rsa_2048_signing_key_whose_policy_delegates_to_iam() {
    let template = template();
    let key = &template["Resources"]["TokenSigningKey"]["Properties"];
    assert_eq!(key["KeySpec"].as_str(), Some("RSA_2048"), "RS256, which HTTP API JWT authorizers verify");
    assert_eq!(key["KeyUsage"].as_str(), Some("SIGN_VERIFY"));
    let key = &translated()["Resources"]["TokenSigningKey"]["Properties"];
    assert_eq!(
        (&key["KeySpec"], &key["KeyUsage"]),
        (&serde_json::json!("RSA_2048"), &serde_json::json!("SIGN_VERIFY"))
    );
    assert!(key["EnableKeyRotation"].is_null(), "KMS can't rotate an asymmetric key");
    let statements =
        translated()["Resources"]["TokenSigningKey"]["Properties"]["KeyPolicy"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "the account statement only: IAM grants the rest");
    assert_eq!(statements[0]["Principal"]["AWS"]["Fn::Sub"], "arn:${AWS::Partition}:iam::${AWS::AccountId}:root");
    assert_eq!(statements[0]["Action"], "kms:*");
}

#[test]
fn only_the_oauth_function_may_sign_with_the_key_and_only_sign_and_publish() {
    let signing_key = serde_json::json!({"Fn::GetAtt": ["TokenSigningKey", "Arn"]});
    let mut granted = Vec::new();
    for (role, statement) in role_statements(translated()) {
        let actions = json_actions(statement);
        let names_key = statement["Resource"] == signing_key;
        let signs = actions.iter().any(|a| ["kms:Sign", "kms:GetPublicKey"].contains(a) || *a == "kms:*");
        if !(names_key || signs) {
            continue;
        }
        assert_eq!(role, "OAuthFunctionRole", "{statement}");
        assert_eq!(statement["Resource"], signing_key, "that key only: {statement}");
        assert_eq!(statement["Effect"], "Allow");
        granted.extend(actions.iter().map(|a| a.to_string()));
        if actions.contains(&"kms:Sign") {
            let condition = &statement["Condition"]["StringEquals"];
            assert_eq!(condition["kms:SigningAlgorithm"], "RSASSA_PKCS1_V1_5_SHA_256", "RS256 only");
            assert_eq!(condition["kms:MessageType"], "RAW");
        }
    }
    granted.sort();
    assert_eq!(granted, ["kms:GetPublicKey", "kms:Sign"], "no other kms action on the signing key");
    let (_, function) = translated_functions().into_iter().find(|(n, _)| *n == "OAuthFunction").unwrap();
    let variables = &function["Environment"]["Variables"];
    assert_eq!(variables["TOKEN_SIGNING_KEYS"], signing_key);
    assert_eq!(variables["TOKEN_LIFETIME_SECONDS"], serde_json::json!({"Ref": "TokenLifetimeSeconds"}));
    assert_eq!(
        variables["ISSUER"],
        serde_json::json!({"Fn::If": ["WithIssuer", {"Ref": "Issuer"}, {"Ref": "AWS::NoValue"}]})
    );
    assert_eq!(variables["TABLE_NAME"], serde_json::json!({"Ref": "Table"}));
    assert_eq!(variables["SECRET_HASH_COST"], serde_json::json!({"Ref": "SecretHashCost"}));
    assert_eq!(
        (function["Runtime"].as_str(), &function["Architectures"]),
        (Some("provided.al2023"), &serde_json::json!(["arm64"]))
    );
    // Reads exactly as verify-secret's (the same client check).
    let template = template();
    let reads = |function: &str| -> Vec<Value> {
        statements(&template, function)
            .into_iter()
            .filter(|s| actions(s).iter().any(|a| a.starts_with("dynamodb:")))
            .cloned()
            .collect()
    };
    assert_eq!(reads("OAuthFunction"), reads("VerifySecretFunction"));
    let metadata = &template["Resources"]["OAuthFunction"]["Metadata"];
    assert_eq!(
        (metadata["BuildMethod"].as_str(), metadata["BuildProperties"]["Binary"].as_str()),
        (Some("rust-cargolambda"), Some("oauth"))
    );
    assert_eq!(
        sub(&template["Resources"]["OAuthLogs"]["Properties"]["LogGroupName"]),
        Some("/aws/lambda/${OAuthFunction}")
    );
}

/// The routes of SPEC section 13, as route keys.
const OAUTH_ROUTES: [(&str, &str); 5] = [
    ("get", "/.well-known/openid-configuration"),
    ("get", "/.well-known/oauth-authorization-server"),
    ("get", "/oauth/v2/keys"),
    ("post", "/oauth/v2/token"),
    ("post", "/oauth/v2/introspect"),
];

#[test]
fn the_oauth_routes_have_no_authorizer_and_a_throttle_of_their_own() {
    let api = &translated()["Resources"]["HttpApi"]["Properties"]["Body"];
    let settings = &translated()["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"]["RouteSettings"];
    for (method, path) in OAUTH_ROUTES {
        let route = &api["paths"][path][method];
        let uri = route["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"].as_str().unwrap_or_default();
        assert!(uri.contains("${OAuthFunction.Arn}"), "{method} {path}: {route}");
        // SAM's way of taking a route from under the API's default (JWT) authorizer.
        assert_eq!(route["security"], serde_json::json!([{"NONE": []}]), "{method} {path}");
        let key = format!("{} {path}", method.to_uppercase());
        assert_eq!(
            settings[&key]["ThrottlingRateLimit"],
            serde_json::json!({"Ref": "OAuthThrottlingRateLimit"}),
            "{key}"
        );
        assert_eq!(
            settings[&key]["ThrottlingBurstLimit"],
            serde_json::json!({"Ref": "OAuthThrottlingBurstLimit"}),
            "{key}"
        );
    }
    let oauth_paths =
        api["paths"].as_object().unwrap().iter().filter(|(_, p)| p.to_string().contains("OAuthFunction.Arn")).count();
    assert_eq!(oauth_paths, 5, "the four routes (discovery at two paths), no other");
    let template = template();
    for name in ["OAuthThrottlingRateLimit", "OAuthThrottlingBurstLimit"] {
        assert!(template["Parameters"][name]["Default"].as_u64().is_some(), "{name}");
    }
}

#[test]
fn an_example_route_trusts_this_issuer_through_api_gateways_own_jwt_authorizer() {
    let api = &translated()["Resources"]["ExampleResourceApi"]["Properties"]["Body"];
    let scheme = &api["components"]["securitySchemes"]["OAuthTokenAuthorizer"]["x-amazon-apigateway-authorizer"];
    assert_eq!(scheme["type"], "jwt", "API Gateway verifies the token itself: no Lambda per call");
    assert_eq!(scheme["identitySource"], "$request.header.Authorization");
    assert_eq!(scheme["jwtConfiguration"]["issuer"], issuer_expression());
    assert_eq!(scheme["jwtConfiguration"]["audience"], serde_json::json!({"Ref": "OAuthAudience"}));
    let route = &api["paths"]["/client/token-whoami"]["get"];
    assert_eq!(route["security"], serde_json::json!([{"OAuthTokenAuthorizer": []}]));
    let uri = route["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"].as_str().unwrap();
    assert!(uri.contains("${VerifySecretFunction.Arn}"), "{uri}");
    // The issuer the authorizer trusts is the one the outputs publish.
    let outputs = &translated()["Outputs"];
    assert_eq!(outputs["OAuthIssuer"]["Value"], issuer_expression());
    assert_eq!(
        outputs["JwksUrl"]["Value"]["Fn::Sub"],
        serde_json::json!(["${Base}/oauth/v2/keys", {"Base": issuer_expression()}])
    );
    assert!(outputs["ExampleResourceApiUrl"]["Value"]["Fn::Sub"].as_str().unwrap().contains("${ExampleResourceApi}"));
}

#[test]
fn the_token_parameters_are_bounded_and_the_issuer_is_an_https_url_without_a_trailing_slash() {
    let template = template();
    let lifetime = &template["Parameters"]["TokenLifetimeSeconds"];
    let bounds = (lifetime["Default"].as_u64(), lifetime["MinValue"].as_u64(), lifetime["MaxValue"].as_u64());
    assert_eq!(bounds, (Some(3600), Some(60), Some(86400)));
    let issuer = &template["Parameters"]["Issuer"];
    assert_eq!(issuer["Default"].as_str(), Some(""), "derived from the request by default");
    assert_eq!(translated()["Parameters"]["Issuer"]["AllowedPattern"], issuer["AllowedPattern"].as_str().unwrap());
    assert_allowed_pattern(
        issuer["AllowedPattern"].as_str().unwrap(),
        &[
            ("", true),
            ("https://auth.example.com", true),
            ("https://auth.example.com/tenant-1", true),
            ("https://auth.example.com:8443/a/b", true),
            ("https://auth.example.com/", false),
            ("https://auth.example.com/tenant/", false),
            ("http://auth.example.com", false),
            ("auth.example.com", false),
            ("https://auth.example.com/a b", false),
            ("https://auth.example.com?x=1", false),
        ],
    );
    assert!(template["Parameters"]["OAuthAudience"]["Default"].as_str().is_some_and(|a| !a.is_empty()));
}

/// The resources that `value` refers to (`Ref`, `Fn::GetAtt`, the names of an `Fn::Sub`),
/// among `names`, as CloudFormation orders creation by them.
fn referred(value: &serde_json::Value, names: &std::collections::BTreeSet<&str>, out: &mut Vec<String>) {
    fn add(name: &str, names: &std::collections::BTreeSet<&str>, out: &mut Vec<String>) {
        let name = name.split('.').next().unwrap_or_default();
        if names.contains(name) {
            out.push(name.to_owned());
        }
    }
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("Ref", serde_json::Value::String(name)) => add(name, names, out),
                    ("Fn::GetAtt", serde_json::Value::Array(parts)) => {
                        add(parts[0].as_str().unwrap_or_default(), names, out)
                    }
                    ("Fn::GetAtt", serde_json::Value::String(dotted)) => add(dotted, names, out),
                    ("Fn::Sub", sub) => {
                        let (text, variables) = match sub {
                            serde_json::Value::Array(parts) => (parts[0].as_str().unwrap_or_default(), parts.get(1)),
                            other => (other.as_str().unwrap_or_default(), None),
                        };
                        for piece in text.split("${").skip(1) {
                            let name = piece.split('}').next().unwrap_or_default();
                            let local = variables.is_some_and(|v| v.get(name).is_some());
                            if !name.starts_with('!') && !local {
                                add(name, names, out);
                            }
                        }
                        if let Some(variables) = variables {
                            referred(variables, names, out);
                        }
                        continue;
                    }
                    _ => {}
                }
                referred(inner, names, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| referred(item, names, out)),
        _ => {}
    }
}

/// A circular reference among the resources of `translation`, if any: the cycle's names.
fn circular_reference(translation: &serde_json::Value) -> Option<Vec<String>> {
    let resources = translation["Resources"].as_object().unwrap();
    let names: std::collections::BTreeSet<&str> = resources.keys().map(String::as_str).collect();
    let mut edges: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    for (name, resource) in resources {
        let mut out = Vec::new();
        referred(resource, &names, &mut out);
        match &resource["DependsOn"] {
            serde_json::Value::String(one) => out.push(one.clone()),
            serde_json::Value::Array(list) => out.extend(list.iter().filter_map(|d| d.as_str().map(str::to_owned))),
            _ => {}
        }
        edges.insert(name, out);
    }
    // Depth first; a name met again on the current path closes a cycle.
    fn visit<'a>(
        name: &'a str,
        edges: &'a std::collections::BTreeMap<&str, Vec<String>>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| *p == name) {
            return Some(path[start..].iter().map(|p| p.to_string()).chain([name.to_owned()]).collect());
        }
        if !done.insert(name) {
            return None;
        }
        path.push(name);
        for next in edges.get(name).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = std::collections::BTreeSet::new();
    edges.keys().find_map(|name| visit(name, &edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_translated_template_has_no_circular_reference() {
    // The check itself: an API whose definition names its own id is the cycle to avoid.
    let looped = serde_json::json!({"Resources": {
        "Api": {"Properties": {"Body": {"issuer": {"Fn::Sub": "https://${Api}.execute-api"}}}},
        "Stage": {"Properties": {"ApiId": {"Ref": "Api"}}}}});
    assert_eq!(circular_reference(&looped), Some(vec!["Api".to_owned(), "Api".to_owned()]));
    assert_eq!(circular_reference(translated()), None);
    assert_eq!(circular_reference(&translate(&["Issuer=https://auth.example.com"])), None);
}

#[test]
fn the_translated_template_creates_on_motos_cloudformation() {
    // moto's server answers every service at the one endpoint `make test` starts.
    let endpoint = std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").expect("moto's endpoint: run with `make test`");
    let output = python().args(["scripts/create-stack-on-moto.py", &endpoint]).output().expect("run the script");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(report["status"], "CREATE_COMPLETE", "{report}");
    // The function signs with the key the stack created, and derives the issuer itself.
    let key = report["signingKey"]["KeyId"].as_str().expect("the signing key");
    let environment = &report["oauthEnvironment"];
    let keys = environment["TOKEN_SIGNING_KEYS"].as_str().unwrap_or_default();
    assert!(keys.starts_with("arn:aws:kms:") && keys.ends_with(&format!(":key/{key}")), "{environment}");
    assert_eq!(environment["TOKEN_LIFETIME_SECONDS"].to_string().trim_matches('"'), "3600");
    assert!(environment.get("ISSUER").is_none(), "no Issuer: no ISSUER, not an empty one ({environment})");
}
