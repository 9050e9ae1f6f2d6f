# Sourced by the IMAP benches: `start_demo_pushmail BIN DIR` starts `BIN --demo` with its data
# and logs in DIR on free ports, waits for its admin API, and makes user1..user100@example.com
# (password imaptest-password) through it. Sets `pid` (the process, for the caller's cleanup),
# `imap` and `smtp` (its IMAP and inbound SMTP ports); stderr goes to DIR/err.log, and RUST_LOG
# defaults to warn.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_demo_pushmail() {
  local bin=$1 dir=$2 admin subscribe token n
  imap=$(free_port) smtp=$(free_port) admin=$(free_port) subscribe=$(free_port)
  mkdir -p "$dir"
  RUST_LOG=${RUST_LOG:-warn} "$bin" --demo --data-dir "$dir/data" --imap-addr "127.0.0.1:$imap" \
    --imaps-addr 127.0.0.1:0 --smtp-addr "127.0.0.1:$smtp" --submission-addr 127.0.0.1:0 \
    --admin-addr "127.0.0.1:$admin" --subscribe-addr "127.0.0.1:$subscribe" >"$dir/out.log" 2>"$dir/err.log" &
  pid=$!
  for _ in $(seq 1 300); do
    grep -q '^export PUSHMAIL_TOKEN=' "$dir/out.log" 2>/dev/null && curl -sf "http://127.0.0.1:$admin/admin/openapi.yaml" >/dev/null && break
    sleep 0.1
  done
  token=$(sed -n 's/^ *export PUSHMAIL_TOKEN=//p' "$dir/out.log" | head -n1)
  [ -n "$token" ] || { echo "pushmail did not start" >&2; cat "$dir/err.log" >&2; return 1; }
  for n in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$admin/admin/domains/example.com/accounts" \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"address\":\"user$n\",\"password\":\"imaptest-password\"}"
  done
}

# For a bench of one process: `PUSHMAIL_BIN` (default target/release/pushmail, built if missing)
# started as above in a temporary folder; at exit the process is stopped and the folder removed.
start_bench_pushmail() {
  local bin=${PUSHMAIL_BIN:-target/release/pushmail}
  [ -x "$bin" ] || cargo build --quiet --release --bin pushmail
  bench_work=$(mktemp -d)
  pid=
  trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$bench_work"' EXIT
  start_demo_pushmail "$bin" "$bench_work"
}
