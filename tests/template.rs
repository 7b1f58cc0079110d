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
