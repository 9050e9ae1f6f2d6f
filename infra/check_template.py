"""Checks that infra/template.yaml's DynamoDB table is exactly infra/table.json's.

infra/table.json is the one definition: the local stack and the tests create the table from it.
Run with the Python that has cfn-lint (its loader understands CloudFormation's !Ref and friends).
"""

import json
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
    print(f"{0 if drift else 1} passed, {1 if drift else 0} failed")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
