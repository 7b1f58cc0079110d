#!/usr/bin/env python3
"""Creates template.yaml, as aws-sam-translator gives it to CloudFormation, on moto's
CloudFormation (tests/template.rs): the stack must reach CREATE_COMPLETE. Prints JSON: the
stack's status and reason, the token signing key as KMS created it, and the oauth
function's environment as Lambda got it.

Usage: create-stack-on-moto.py ENDPOINT [Name=Value ...]   (parameter values)
"""
import io
import json
import subprocess
import sys
import time
import uuid
import zipfile

import boto3


def main():
    endpoint, parameters = sys.argv[1], sys.argv[2:]
    translated = subprocess.run(
        [sys.executable, "scripts/translate-template.py", *parameters], capture_output=True, text=True, check=True
    ).stdout
    session = dict(
        endpoint_url=endpoint,
        region_name="eu-central-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    # The code the translation names (s3://bucket/code.zip), as `sam deploy` uploads it.
    s3 = boto3.client("s3", **session)
    try:
        s3.create_bucket(Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("bootstrap", "")
    s3.put_object(Bucket="bucket", Key="code.zip", Body=code.getvalue())

    cloudformation = boto3.client("cloudformation", **session)
    name = f"oidc-{uuid.uuid4().hex[:12]}"
    values = {"JwtIssuer": "https://issuer.example.com", "JwtAudience": "audience"}
    values.update(p.partition("=")[::2] for p in parameters)
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=translated,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    for _ in range(120):
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        time.sleep(0.5)
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    report = {"status": stack["StackStatus"], "reason": stack.get("StackStatusReason")}
    if "TokenSigningKey" in resources:
        # GetPublicKey, as the oauth function reads it (moto's DescribeKey fails on a key
        # that CloudFormation created).
        key = boto3.client("kms", **session).get_public_key(KeyId=resources["TokenSigningKey"])
        report["signingKey"] = {k: key.get(k) for k in ["KeyId", "KeySpec", "KeyUsage", "SigningAlgorithms"]}
    if "OAuthFunction" in resources:
        function = boto3.client("lambda", **session).get_function_configuration(FunctionName=resources["OAuthFunction"])
        report["oauthEnvironment"] = function.get("Environment", {}).get("Variables", {})
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
