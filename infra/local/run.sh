#!/usr/bin/env bash
# Runs pushmail against the local AWS stand-in: moto on 127.0.0.1:4566 (or your LocalStack),
# with the table and SES identity created, then the one `pushmail` process on DynamoDB and SES
# with the demo domain and account (the Subscribe URL on 127.0.0.1:8080, the admin API on
# 127.0.0.1:8081; on a fresh table it prints a server-wide admin token).
# Ctrl-C stops everything this script started.
#
#   PUSHMAIL_SUBSCRIBE_ADDR     listen elsewhere (default 127.0.0.1:8080)
#   PUSHMAIL_ADMIN_ADDR         listen elsewhere (default 127.0.0.1:8081)
#   PUSHMAIL_USE_RUNNING_ENDPOINT=1 with AWS_ENDPOINT_URL: use a LocalStack you started
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

cleanup() {
  infra/local/stack.sh down || true
}
trap cleanup EXIT INT TERM

infra/local/stack.sh up
eval "$(infra/local/stack.sh env)"
export PUSHMAIL_TABLE=${PUSHMAIL_TABLE:-pushmail}
export PUSHMAIL_MAIL_FROM=${PUSHMAIL_MAIL_FROM:-"pushmail <push@pushmail.test>"}

cargo run -p pushmail -- --store dynamodb --mail ses --local-mode true --demo
