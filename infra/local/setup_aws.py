"""Create pushmail's table, message bucket, change-hint topic and SES identity on an AWS endpoint (moto, LocalStack, or AWS itself).

Reads the table definition from infra/table.json, the same file the SAM template is checked against.
Idempotent: an existing table or identity is left as it is.
"""

import json
import os
import sys
import time
from pathlib import Path

import boto3
import botocore.config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    table_name = os.environ.get("PUSHMAIL_TABLE", "pushmail")
    mail_domain = os.environ.get("PUSHMAIL_SES_IDENTITY", "pushmail.test")
    region = os.environ.get("AWS_REGION", "us-east-1")
    definition = json.loads((ROOT / "infra" / "table.json").read_text())
    ttl_attribute = definition.pop("TimeToLiveAttribute")
    definition.pop("_comment", None)

    # boto3 reads AWS_ENDPOINT_URL, and AWS_ENDPOINT_URL_<SERVICE> where one is set, itself.
    dynamodb = boto3.client("dynamodb", region_name=region)
    try:
        dynamodb.create_table(TableName=table_name, **definition)
        print(f"created table {table_name}")
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
        print(f"table {table_name} exists")
    for _ in range(50):
        if dynamodb.describe_table(TableName=table_name)["Table"]["TableStatus"] == "ACTIVE":
            break
        time.sleep(0.2)
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
        )

    bucket = os.environ.get("PUSHMAIL_BUCKET", "pushmail-mail")
    # Path-style: moto and LocalStack serve buckets by path, not by host name.
    s3 = boto3.client("s3", region_name=region,
                      config=botocore.config.Config(s3={"addressing_style": "path"}))
    try:
        s3.create_bucket(Bucket=bucket)
        print(f"created bucket {bucket}")
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        print(f"bucket {bucket} exists")

    # The listeners' change hints: one SNS topic; each process makes its own SQS queue.
    topic = os.environ.get("PUSHMAIL_HINT_TOPIC", "pushmail-hints")
    arn = boto3.client("sns", region_name=region).create_topic(Name=topic)["TopicArn"]
    print(f"hint topic {arn}")

    ses = boto3.client("ses", region_name=region)
    ses.verify_domain_identity(Domain=mail_domain)
    print(f"verified SES identity {mail_domain}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
