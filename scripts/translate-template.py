#!/usr/bin/env python3
"""template.yaml through aws-sam-translator (the SAM CLI's own, in .tools/venv), offline:
what CloudFormation would deploy, as JSON on stdout, for tests/template.rs.

Usage: translate-template.py [Name=Value ...]   (parameter values; the defaults otherwise)
"""
import json
import os
import sys

from samtranslator.parser.parser import Parser
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no AWS managed policy, so nothing needs IAM to look one up."""

    def load(self):
        return {}


def main():
    # The pseudo parameters need a region; nothing is called in it.
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    with open("template.yaml", encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # As `sam deploy` hands it to CloudFormation: the code already uploaded.
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    values = {"JwtIssuer": "https://issuer.example.com", "JwtAudience": "audience"}
    for arg in sys.argv[1:]:
        name, _, value = arg.partition("=")
        values[name] = value
    output = transform(template, values, NoManagedPolicies(), Parser())
    json.dump(output, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
