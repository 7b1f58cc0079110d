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
    assert!(paths.contains(&"/zitadel.management.v1.ManagementService/{method}"), "{paths:?}");
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

const FUNCTIONS: [&str; 2] = ["RegenerateSecretFunction", "RotateSecretFunction"];

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
fn both_functions_may_use_the_table_key_only_through_dynamodb() {
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
        let kms: Vec<&&Value> =
            statements.iter().filter(|s| actions(s).iter().any(|a| a.starts_with("kms:"))).collect();
        assert_eq!(kms.len(), 1, "{function}: one KMS statement");
        let grant = kms[0];
        assert_eq!(grant["Effect"].as_str(), Some("Allow"));
        let mut granted = actions(grant);
        granted.sort_unstable();
        assert_eq!(granted, ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"], "{function}");
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
        assert_eq!(writes, 1, "{function}: one write statement");
    }
}

#[test]
fn the_function_timeout_is_the_one_the_deadlines_are_taken_from() {
    let template = template();
    let timeout = template["Globals"]["Function"]["Timeout"].as_u64();
    assert_eq!(timeout, Some(oidc_client_secret::deadline::FUNCTION_TIMEOUT.as_secs()));
    assert_eq!(template["Resources"]["RegenerateSecretFunction"]["Properties"]["Timeout"], Value::Null);
}
