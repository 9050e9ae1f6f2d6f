//! `pushmail probe`: an admin's end-to-end check of a deployment or of the local process, in
//! seconds. With a test account of an integrated domain and that domain's push secret, it acts
//! as the push service and as a sender: SUBSCRIBE (signed) with a callback the probe serves, an
//! IMAP session IDLEing in the INBOX, a mail over SMTP, then the NEW_MAIL notice at the callback
//! (its signature checked) and `* EXISTS` at the idler, the mail fetched, removed again, and
//! UNSUBSCRIBE. Each step is printed with its time and verdict (`--json` for monitoring); the
//! exit status says whether all passed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use pushmail_core::protocol::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;

#[derive(Debug, clap::Args)]
pub struct Probe {
    /// The Subscribe URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/subscribe")]
    subscribe_url: String,
    /// The test account's domain's push secret: signs SUBSCRIBE, checks the notice.
    #[arg(long, env = "PUSHMAIL_PROBE_SECRET", hide_env_values = true)]
    secret: String,
    /// The test account (its domain integrated; the probe's mail lands in its INBOX and goes).
    #[arg(long)]
    account: String,
    #[arg(long, env = "PUSHMAIL_PROBE_PASSWORD", hide_env_values = true)]
    password: String,
    /// The SMTP listener taking mail for the account (host:port).
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp: String,
    /// The IMAP listener (host:port): plaintext LOGIN (a loopback listener with `--demo` or
    /// `--imap-plaintext-login-on-loopback`), or IMAPS with `--imaps`.
    #[arg(long, default_value = "127.0.0.1:1143")]
    imap: String,
    /// `--imap` is IMAPS (TLS from the first byte, port 993): what a deployment offers. The
    /// certificate is checked against the web's roots (compiled in) or `--ca-file`.
    #[arg(long)]
    imaps: bool,
    /// A PEM file of the certificate authorities (or the self-signed certificate) to trust for
    /// IMAPS instead of the web's roots.
    #[arg(long, requires = "imaps")]
    ca_file: Option<std::path::PathBuf>,
    /// The name the IMAPS certificate must carry (default: `--imap`'s host).
    #[arg(long, requires = "imaps")]
    tls_name: Option<String>,
    /// Where the probe's callback listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    callback_listen: SocketAddr,
    /// The callback's URL as pushmail reaches it, when not the listening address itself.
    #[arg(long)]
    callback_url: Option<String>,
    /// The longest each wait may take, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// One JSON object on standard output instead of lines.
    #[arg(long)]
    json: bool,
}

/// One step's outcome.
struct Step {
    name: &'static str,
    ok: bool,
    millis: u128,
    detail: String,
}

pub async fn probe(args: Probe) -> anyhow::Result<()> {
    let mut steps = Vec::new();
    let passed = run(&args, &mut steps).await;
    if let Err(error) = &passed {
        steps.push(Step {
            name: "probe",
            ok: false,
            millis: 0,
            detail: format!("{error:#}"),
        });
    }
    let ok = passed.is_ok() && steps.iter().all(|s| s.ok);
    if args.json {
        let listed: Vec<Value> = steps
            .iter()
            .map(|s| json!({"step": s.name, "ok": s.ok, "ms": s.millis, "detail": s.detail}))
            .collect();
        println!("{}", json!({"ok": ok, "steps": listed}));
    } else {
        for s in &steps {
            let verdict = if s.ok { "ok  " } else { "FAIL" };
            println!("{verdict} {:<16} {:>6} ms  {}", s.name, s.millis, s.detail);
        }
        println!("probe: {}", if ok { "passed" } else { "FAILED" });
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// Runs a step, recording it; its error ends the probe.
async fn step<T>(
    steps: &mut Vec<Step>,
    name: &'static str,
    work: impl Future<Output = anyhow::Result<(T, String)>>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    let outcome = work.await;
    let millis = started.elapsed().as_millis();
    match outcome {
        Ok((value, detail)) => {
            steps.push(Step {
                name,
                ok: true,
                millis,
                detail,
            });
            Ok(value)
        }
        Err(error) => {
            steps.push(Step {
                name,
                ok: false,
                millis,
                detail: format!("{error:#}"),
            });
            bail!("{name} failed")
        }
    }
}

async fn run(args: &Probe, steps: &mut Vec<Step>) -> anyhow::Result<()> {
    let wait = Duration::from_secs(args.timeout);
    let nonce = format!("{:016x}", rand::random::<u64>());
    let (notices, mut noticed) = mpsc::unbounded_channel();
    let callback_url = step(steps, "callback", serve_callback(args, &nonce, notices)).await?;
    // Later than any earlier probe's: this SUBSCRIBE supersedes whatever link stands.
    let generation = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(1);
    let registration = format!("probe-{nonce}");
    let subscribe = json!({
        "type": "SUBSCRIBE", "email": args.account, "password": args.password,
        "registration": registration, "generation": generation, "callback": callback_url,
    });
    step(steps, "subscribe", async {
        let answer = post_signed(args, &subscribe).await?;
        match answer.get("status").and_then(Value::as_str) {
            Some("subscribed") => Ok(((), answer.to_string())),
            _ => bail!("answered {answer}"),
        }
    })
    .await?;
    let mut imap = step(steps, "imap idle", async {
        let mut imap = Imap::login(args, wait).await?;
        imap.command("s", "SELECT INBOX").await?;
        imap.send("i IDLE").await?;
        imap.until("+", wait).await?;
        Ok((imap, "logged in, INBOX selected, idling".to_owned()))
    })
    .await?;
    let subject = format!("pushmail probe {nonce}");
    let sent = Instant::now();
    step(steps, "smtp", async {
        let reply = deliver(&args.smtp, &args.account, &subject, wait).await?;
        Ok(((), reply))
    })
    .await?;
    step(steps, "new-mail notice", async {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Ok(Some((notice, signed))) =
                tokio::time::timeout_at(deadline, noticed.recv()).await
            else {
                bail!("no NEW_MAIL within {wait:?}");
            };
            if notice.get("subject").and_then(Value::as_str) != Some(subject.as_str()) {
                continue;
            }
            if !signed {
                bail!("a NEW_MAIL whose signature does not check out");
            }
            let at = sent.elapsed().as_millis();
            let folder = notice.get("folder").cloned().unwrap_or_default();
            return Ok((
                (),
                format!("NEW_MAIL for {folder} {at} ms after sending began, signed"),
            ));
        }
    })
    .await?;
    let uid = step(steps, "imap exists", async {
        let exists = imap.until(" EXISTS", wait).await?;
        imap.send("DONE").await?;
        imap.until("i OK", wait).await?;
        let search = format!("UID SEARCH HEADER SUBJECT \"{subject}\"");
        let found = imap.command("f", &search).await?;
        let uid = found
            .iter()
            .find_map(|l| l.strip_prefix("* SEARCH "))
            .and_then(|rest| rest.split_whitespace().last())
            .and_then(|uid| uid.parse::<u32>().ok())
            .context("the probe's mail is not in the INBOX")?;
        Ok((uid, format!("{} then UID {uid} found", exists.trim_end())))
    })
    .await?;
    step(steps, "imap fetch", async {
        let fetch = format!("UID FETCH {uid} (BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)");
        let fetched = imap.command("g", &fetch).await?;
        if !fetched.iter().any(|line| line.contains(&subject)) {
            bail!("UID {uid} fetched without its subject: {fetched:?}");
        }
        let size = fetched
            .iter()
            .find_map(|line| line.split("RFC822.SIZE ").nth(1))
            .and_then(|rest| rest.split([' ', ')']).next())
            .unwrap_or("?")
            .to_owned();
        Ok(((), format!("UID {uid}: the subject as sent, {size} bytes")))
    })
    .await?;
    step(steps, "cleanup", async {
        imap.command("d", &format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))
            .await?;
        imap.command("e", &format!("UID EXPUNGE {uid}")).await?;
        imap.command("l", "LOGOUT").await?;
        Ok(((), format!("UID {uid} expunged")))
    })
    .await?;
    let unsubscribe = json!({
        "type": "UNSUBSCRIBE", "email": args.account,
        "registration": registration, "generation": generation,
    });
    step(steps, "unsubscribe", async {
        let answer = post_signed(args, &unsubscribe).await?;
        match answer.get("status").and_then(Value::as_str) {
            Some("unsubscribed") => Ok(((), answer.to_string())),
            _ => bail!("answered {answer}"),
        }
    })
    .await?;
    Ok(())
}

/// Serves the probe's callback: every notice with whether its signature checks out.
async fn serve_callback(
    args: &Probe,
    nonce: &str,
    notices: mpsc::UnboundedSender<(Value, bool)>,
) -> anyhow::Result<(String, String)> {
    let listener = tokio::net::TcpListener::bind(args.callback_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.callback_listen))?;
    let path = format!("/probe/{nonce}");
    let url = match &args.callback_url {
        Some(url) => url.clone(),
        None => format!("http://{}{path}", listener.local_addr()?),
    };
    let secret = args.secret.clone();
    let app = axum::Router::new().route(
        &path,
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (secret, notices) = (secret.clone(), notices.clone());
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let signed = header(TIMESTAMP_HEADER)
                    .parse::<i64>()
                    .is_ok_and(|at| sign(secret.as_bytes(), at, &body) == header(SIGNATURE_HEADER));
                match serde_json::from_slice::<Value>(&body) {
                    Ok(notice) => {
                        let _ = notices.send((notice, signed));
                        StatusCode::OK
                    }
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url.clone(), format!("listening for notices at {url}")))
}

async fn post_signed(args: &Probe, message: &Value) -> anyhow::Result<Value> {
    let body = message.to_string();
    let at = chrono::Utc::now().timestamp();
    let answer = reqwest::Client::new()
        .post(&args.subscribe_url)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, at.to_string())
        .header(
            SIGNATURE_HEADER,
            sign(args.secret.as_bytes(), at, body.as_bytes()),
        )
        .body(body)
        .timeout(Duration::from_secs(args.timeout))
        .send()
        .await
        .with_context(|| format!("POST {}", args.subscribe_url))?;
    let status = answer.status();
    let value: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("HTTP {status}: {value}");
    }
    Ok(value)
}

/// One mail to `to` over SMTP; the final reply.
async fn deliver(smtp: &str, to: &str, subject: &str, wait: Duration) -> anyhow::Result<String> {
    let stream = tokio::time::timeout(wait, TcpStream::connect(smtp))
        .await
        .context("SMTP connect timed out")?
        .with_context(|| format!("cannot reach SMTP at {smtp}"))?;
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let reply = async |lines: &mut tokio::io::Lines<BufReader<OwnedReadHalf>>, code: &str| {
        loop {
            let line = tokio::time::timeout(wait, lines.next_line())
                .await
                .context("SMTP reply timed out")??
                .context("SMTP closed")?;
            if line.len() > 3 && line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            if !line.starts_with(code) {
                bail!("SMTP answered {line:?}, not {code}");
            }
            return Ok(line);
        }
    };
    reply(&mut lines, "220").await?;
    let date = chrono::Utc::now().to_rfc2822();
    let message = format!(
        "From: pushmail probe <probe@pushmail.invalid>\r\nTo: <{to}>\r\nDate: {date}\r\nSubject: {subject}\r\n\r\nA check of the push path; it is removed again.\r\n."
    );
    let exchange = [
        ("EHLO probe.pushmail.invalid".to_owned(), "250"),
        ("MAIL FROM:<probe@pushmail.invalid>".to_owned(), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_owned(), "354"),
        (message, "250"),
    ];
    let mut last = String::new();
    for (command, code) in exchange {
        writer
            .write_all(format!("{command}\r\n").as_bytes())
            .await?;
        last = reply(&mut lines, code).await?;
    }
    writer.write_all(b"QUIT\r\n").await?;
    Ok(last)
}

/// A stream of either kind.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// An IMAP session, plaintext or IMAPS, line by line.
struct Imap {
    lines: tokio::io::Lines<BufReader<tokio::io::ReadHalf<Box<dyn Stream>>>>,
    writer: tokio::io::WriteHalf<Box<dyn Stream>>,
    wait: Duration,
}

/// A TLS client trusting the web's roots, or the authorities of `ca_file`.
fn tls_connector(ca_file: Option<&std::path::Path>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for certificate in rustls_pki_types::CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read {}", path.display()))?
            {
                roots.add(certificate.context("a certificate that does not parse")?)?;
            }
        }
        None => {
            for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
                // A root the verifier cannot use is left out, as a browser would.
                let _ = roots.add(certificate.clone());
            }
        }
    }
    let config = ClientConfig::builder_with_provider(std::sync::Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

impl Imap {
    async fn login(args: &Probe, wait: Duration) -> anyhow::Result<Self> {
        let address = &args.imap;
        let tcp = tokio::time::timeout(wait, TcpStream::connect(address))
            .await
            .context("IMAP connect timed out")?
            .with_context(|| format!("cannot reach IMAP at {address}"))?;
        let stream: Box<dyn Stream> = match args.imaps {
            false => Box::new(tcp),
            true => {
                let host = args.tls_name.clone().unwrap_or_else(|| {
                    address
                        .rsplit_once(':')
                        .map_or(address.clone(), |(host, _)| host.to_owned())
                });
                let name =
                    rustls_pki_types::ServerName::try_from(host.clone()).with_context(|| {
                        format!("{host:?} is not a name to check a certificate for")
                    })?;
                let connector = tls_connector(args.ca_file.as_deref())?;
                let tls = tokio::time::timeout(wait, connector.connect(name, tcp))
                    .await
                    .context("the TLS handshake timed out")?
                    .context("the TLS handshake failed (the certificate?)")?;
                Box::new(tls)
            }
        };
        let (reader, writer) = tokio::io::split(stream);
        let mut imap = Self {
            lines: BufReader::new(reader).lines(),
            writer,
            wait,
        };
        let (user, password) = (&args.account, &args.password);
        imap.until("* OK", wait).await?;
        let quoted = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        imap.command("a", &format!("LOGIN {} {}", quoted(user), quoted(password)))
            .await?;
        Ok(imap)
    }

    async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        Ok(())
    }

    /// Lines up to one starting with (or, for ` EXISTS`, containing) `what`; that line.
    async fn until(&mut self, what: &str, wait: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .with_context(|| format!("no {what:?} within {wait:?}"))??
                .context("IMAP closed")?;
            if line.starts_with(what) || (what.starts_with(' ') && line.contains(what)) {
                return Ok(line);
            }
        }
    }

    /// A command's lines, up to its tagged OK (an error otherwise).
    async fn command(&mut self, tag: &str, command: &str) -> anyhow::Result<Vec<String>> {
        self.send(&format!("{tag} {command}")).await?;
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut lines = Vec::new();
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .context("IMAP reply timed out")??
                .context("IMAP closed")?;
            if let Some(status) = line.strip_prefix(&format!("{tag} ")) {
                if status.starts_with("OK") {
                    return Ok(lines);
                }
                bail!(
                    "{} answered {line:?}",
                    command.split(' ').next().unwrap_or(command)
                );
            }
            lines.push(line);
        }
    }
}
