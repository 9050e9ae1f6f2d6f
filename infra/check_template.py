"""Checks infra/template.yaml against what it must agree with.

- Its DynamoDB table is exactly infra/table.json's (the one definition: the local stack and the
  tests create the table from it).
- The listener task's variables are all ones the `pushmail` binary reads (each declared as
  `env = "NAME"` in its sources), the role is `listeners` behind PROXY v2, and the ports agree:
  each listener's address in the environment, the container's port mappings and the target
  groups' ports are the same four.

Run with the Python that has cfn-lint (its loader understands CloudFormation's !Ref and friends).
"""

import json
import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent


def normalised(definition):
    """The parts that must agree, in an order-independent form."""
    def keys(schema):
        return sorted((k["AttributeName"], k["KeyType"]) for k in schema)

    return {
        "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in definition["AttributeDefinitions"]),
        "keys": keys(definition["KeySchema"]),
        "indexes": sorted(
            (i["IndexName"], tuple(keys(i["KeySchema"])), i["Projection"]["ProjectionType"])
            for i in definition.get("GlobalSecondaryIndexes", [])
        ),
        "billing": definition["BillingMode"],
        "ttl": definition["TimeToLiveAttribute"],
    }


def variables_read() -> set:
    """Every variable the binary reads: clap's `env = "NAME"` in its sources, and RUST_LOG."""
    names = {"RUST_LOG"}
    for source in list((ROOT / "container" / "src").rglob("*.rs")) + list((ROOT / "shared" / "runtime" / "src").rglob("*.rs")):
        names.update(re.findall(r'env = "([A-Z0-9_]+)"', source.read_text()))
    return names


def listener_problems(template) -> list:
    resources = template["Resources"]
    tasks = [r for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    if len(tasks) != 1:
        return [f"expected one ECS task definition, found {len(tasks)}"]
    (container,) = tasks[0]["Properties"]["ContainerDefinitions"]
    environment = {v["Name"]: v.get("Value") for v in container.get("Environment", [])}
    secrets = {v["Name"] for v in container.get("Secrets", [])}
    problems = [f"the task sets {name}, which pushmail does not read"
                for name in sorted((set(environment) | secrets) - variables_read())]
    if environment.get("PUSHMAIL_ROLE") != "listeners":
        problems.append("the task must run PUSHMAIL_ROLE=listeners (the Lambdas serve HTTP)")
    if not environment.get("PUSHMAIL_PROXY_PROTOCOL_FROM"):
        problems.append("the task must believe the balancer's PROXY v2 headers (PUSHMAIL_PROXY_PROTOCOL_FROM)")
    if not {"PUSHMAIL_TLS_CERT_PEM", "PUSHMAIL_TLS_KEY_PEM"} <= secrets:
        problems.append("the certificate and key must come from Secrets Manager")
    listening = sorted(int(str(environment.get(name, ":0")).rsplit(":", 1)[1])
                       for name in ("PUSHMAIL_SMTP_ADDR", "PUSHMAIL_SUBMISSION_ADDR", "PUSHMAIL_IMAP_ADDR", "PUSHMAIL_IMAPS_ADDR"))
    mapped = sorted(m["ContainerPort"] for m in container.get("PortMappings", []))
    targets = sorted(r["Properties"]["Port"] for r in resources.values()
                     if r["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup")
    if not listening == mapped == targets:
        problems.append(f"ports disagree: listening {listening}, mapped {mapped}, target groups {targets}")
    for group in (r for r in resources.values() if r["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"):
        attributes = {a["Key"]: a["Value"] for a in group["Properties"].get("TargetGroupAttributes", [])}
        if attributes.get("proxy_protocol_v2.enabled") != "true":
            problems.append(f"target group on {group['Properties']['Port']} sends no PROXY v2 header")
    return problems


def main() -> int:
    expected = json.loads((ROOT / "infra" / "table.json").read_text())
    template, problems = decode(str(ROOT / "infra" / "template.yaml"))
    if problems:
        for problem in problems:
            print(problem)
        return 1
    tables = [r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        print(f"expected one DynamoDB table in the template, found {len(tables)}")
        return 1
    properties = dict(tables[0]["Properties"])
    ttl = properties.get("TimeToLiveSpecification", {})
    if not ttl.get("Enabled"):
        print("the template's table has no enabled TTL")
        return 1
    properties["TimeToLiveAttribute"] = ttl.get("AttributeName")
    want, have = normalised(expected), normalised(properties)
    drift = [k for k in want if want[k] != have[k]]
    for key in drift:
        print(f"table drift in {key}: infra/table.json has {want[key]}, infra/template.yaml has {have[key]}")
    if not properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        print("the template's table must have point-in-time recovery on")
        drift.append("pitr")
    listeners = listener_problems(template)
    for problem in listeners:
        print(f"listener drift: {problem}")
    failed = bool(drift) + bool(listeners)
    print(f"{2 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
