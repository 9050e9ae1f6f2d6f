#!/usr/bin/env bash
# Fuzzes the IMAP command path (shared/imap/fuzz, target imap_session) for a while: arbitrary
# bytes into sessions on a real embedded store with an account, three ordinary messages and
# odd ones (empty, spaces only, header only, NUL, 8-bit, empty nested parts); then stored
# messages themselves (target imap_stored_message): arbitrary bytes FETCHed item by item. Not
# part of the test command.
#
#   infra/bench/imap_fuzz.sh [SECONDS]    (default 300)
#
# Needs a nightly toolchain and cargo-fuzz (installed if missing). Seeds a corpus of well-formed
# sessions first; a crash leaves its input under shared/imap/fuzz/artifacts/ and fails the script.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-300}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd "$root/shared/imap/fuzz"
corpus=corpus/imap_session
mkdir -p "$corpus"
seed() { printf '%b' "$2" >"$corpus/seed-$1"; }
seed login 'a1 CAPABILITY\r\na2 LOGIN alice@example.com pw\r\na3 LIST "" "*"\r\na4 SELECT INBOX\r\na5 FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)\r\na6 UID FETCH 1:2 (BODY.PEEK[])\r\na7 LOGOUT\r\n'
seed store 'a1 LOGIN alice@example.com pw\r\na2 SELECT INBOX\r\na3 STORE 1:* +FLAGS (\\Seen $X)\r\na4 UID STORE 2 -FLAGS.SILENT (\\Seen)\r\na5 SEARCH OR UNSEEN SUBJECT m1 NOT UID 3\r\na6 STATUS INBOX (MESSAGES UNSEEN UIDNEXT)\r\n'
seed literal 'a1 LOGIN {17}\r\nalice@example.com {2+}\r\npw\r\na2 NAMESPACE\r\na3 ENABLE CONDSTORE\r\na4 ID NIL\r\n'
seed folders 'a1 LOGIN alice@example.com pw\r\na2 CREATE a/b/\r\na3 RENAME a x&AOk-\r\na4 SUBSCRIBE x&AOk-\r\na5 LSUB "" *\r\na6 UNSUBSCRIBE x&AOk-\r\na7 DELETE x&AOk-/b\r\na8 LIST "" %%\r\n'
seed append 'a1 LOGIN alice@example.com pw\r\na2 APPEND INBOX (\\Seen) "28-Nov-2026 10:00:00 +0000" {21+}\r\nSubject: x\r\n\r\nhello\r\na3 SELECT INBOX (CONDSTORE)\r\na4 COPY 1:2 Trash\r\na5 UID MOVE 3 Junk\r\na6 STORE 1 +FLAGS.SILENT (\\Deleted)\r\na7 UID EXPUNGE 1\r\na8 EXPUNGE\r\na9 CLOSE\r\n'
seed sections 'a1 LOGIN alice@example.com pw\r\na2 SELECT INBOX\r\na3 FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[1.MIME] BODY[TEXT]<0.10> RFC822.HEADER MODSEQ)\r\na4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)\r\na5 UID STORE 1 (UNCHANGEDSINCE 1) +FLAGS ($x)\r\na6 SEARCH TEXT hello HEADER subject m MODSEQ 1\r\n'
seed idle 'a1 AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHB3\r\na2 EXAMINE INBOX\r\na3 IDLE\r\nDONE\r\na4 UNSELECT\r\na5 STARTTLS\r\n'
seed every-item 'a1 LOGIN alice@example.com pw\r\na2 SELECT INBOX\r\na3 FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODY BODYSTRUCTURE RFC822.HEADER BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[1.TEXT] BODY.PEEK[2.1] BODY.PEEK[]<0.2> RFC822.TEXT RFC822)\r\na4 SEARCH TEXT x\r\n'
cargo +nightly fuzz run --target-dir "$root/target/fuzz" imap_session "$corpus" -- \
  -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1
# Then stored messages themselves, FETCHed item by item, for as long again.
stored=corpus/imap_stored_message
mkdir -p "$stored"
printf 'From: "a" <b@c>\r\nTo: g: d@e, f@g;\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n--x--\r\n' >"$stored/seed-nested"
cargo +nightly fuzz run --target-dir "$root/target/fuzz" imap_stored_message "$stored" -- \
  -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1
