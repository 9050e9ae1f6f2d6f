//! The wire side of the push protocol (spec §1–2): signatures, request parsing and the answers.
//! Pure functions only; the rules that need the store live in [`crate::service`].

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::types::{Address, Device};

pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A timestamp further than this from the server's clock is refused.
pub const CLOCK_WINDOW_SECS: i64 = 300;
/// A signature seen within this many seconds is a replay.
pub const REPLAY_WINDOW_SECS: i64 = 600;
pub const TIMESTAMP_HEADER: &str = "x-push-timestamp";
pub const SIGNATURE_HEADER: &str = "x-push-signature";
/// A domain holds at most this many live push secrets (one to sign with, one being rotated out).
pub const MAX_LIVE_SECRETS: u32 = 2;
const MAX_REGISTRATION_LEN: usize = 128;
const MAX_DEVICE_FIELD_CHARS: usize = 64;
const MAX_PASSWORD_CHARS: usize = 1024;
const MAX_CALLBACK_LEN: usize = 2048;

/// Every refusal the protocol defines (spec §2, error table), plus the server's own failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    BadSignature,
    BadCredentials,
    IntegrationDisabled,
    StaleGeneration,
    TooLarge,
    UnsupportedMediaType,
    RateLimited,
    ImapUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::BadSignature | Self::BadCredentials => 401,
            Self::IntegrationDisabled => 403,
            Self::StaleGeneration => 409,
            Self::TooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::ImapUnavailable => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::BadSignature => "bad_signature",
            Self::BadCredentials => "bad_credentials",
            Self::IntegrationDisabled => "integration_disabled",
            Self::StaleGeneration => "stale_generation",
            Self::TooLarge => "too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::ImapUnavailable => "imap_unavailable",
            Self::Internal => "internal_error",
        }
    }
}

/// A refused request: the code, a human sentence, and for 429 how long to wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", code.as_str())]
pub struct Refusal {
    pub code: ErrorCode,
    pub detail: String,
    pub retry_after_secs: Option<u64>,
}

impl Refusal {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            retry_after_secs: None,
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, detail)
    }

    pub fn body(&self) -> Value {
        json!({"error": self.code.as_str(), "detail": self.detail})
    }
}

/// An HTTP answer in transport-neutral form; the Lambda and local adapters turn it into a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after_secs: Option<u64>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            retry_after_secs: None,
        }
    }
}

impl From<Refusal> for Reply {
    fn from(refusal: Refusal) -> Self {
        Self {
            status: refusal.code.status(),
            body: refusal.body(),
            retry_after_secs: refusal.retry_after_secs,
        }
    }
}

/// The two signature headers, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub timestamp: i64,
    /// The 32 MAC bytes of `v1=<hex>`.
    pub mac: Vec<u8>,
}

impl SignatureHeaders {
    pub fn parse(timestamp: Option<&str>, signature: Option<&str>) -> Result<Self, Refusal> {
        let bad = |detail: &str| Refusal::new(ErrorCode::BadSignature, detail);
        let timestamp = timestamp.ok_or_else(|| bad("the X-Push-Timestamp header is missing"))?;
        let signature = signature.ok_or_else(|| bad("the X-Push-Signature header is missing"))?;
        // Canonical decimal only (no sign, no leading zero): the MAC covers the header's text,
        // and this text is then the number's one spelling.
        if timestamp.is_empty()
            || timestamp.len() > 12
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
            || (timestamp.len() > 1 && timestamp.starts_with('0'))
        {
            return Err(bad(
                "X-Push-Timestamp must be unix seconds in decimal, without leading zeros",
            ));
        }
        let timestamp: i64 = timestamp
            .parse()
            .map_err(|_| bad("X-Push-Timestamp must be unix seconds in decimal"))?;
        let hex_mac = signature
            .strip_prefix("v1=")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .ok_or_else(|| bad("X-Push-Signature must be v1=<64 lowercase hex digits>"))?;
        let mac = hex::decode(hex_mac).map_err(|_| bad("X-Push-Signature is not hex"))?;
        Ok(Self { timestamp, mac })
    }

    /// Refuses a timestamp more than [`CLOCK_WINDOW_SECS`] from `now`.
    pub fn check_clock(&self, now: DateTime<Utc>) -> Result<(), Refusal> {
        if (now.timestamp() - self.timestamp).abs() > CLOCK_WINDOW_SECS {
            return Err(Refusal::new(
                ErrorCode::BadSignature,
                "X-Push-Timestamp is more than 300 seconds from the server's clock",
            ));
        }
        Ok(())
    }

    /// True when the MAC was made with `secret` over this timestamp and body (constant time).
    pub fn is_signed_by(&self, secret: &[u8], body: &[u8]) -> bool {
        signing_mac(secret, self.timestamp, body)
            .verify_slice(&self.mac)
            .is_ok()
    }

    /// The key under which the replay guard remembers this signature.
    pub fn replay_key(&self) -> String {
        hex::encode(&self.mac)
    }
}

fn signing_mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `v1=<hex>` for a body: how pushmail signs its notices, and how tests and tools sign requests.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(signing_mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// A SUBSCRIBE, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub email: Address,
    pub password: String,
    pub registration: String,
    pub generation: u64,
    pub callback: String,
    pub device: Option<Device>,
}

/// An UNSUBSCRIBE, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub email: Address,
    pub registration: String,
    pub generation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushRequest {
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
}

impl PushRequest {
    pub fn email(&self) -> &Address {
        match self {
            Self::Subscribe(s) => &s.email,
            Self::Unsubscribe(u) => &u.email,
        }
    }
}

pub use crate::network::CallbackPolicy;

/// The request body as JSON, before its fields are checked. The email is read first so that the
/// domain's secrets can be found, and the signature checked, before anything else is trusted.
pub struct UncheckedRequest {
    fields: Map<String, Value>,
}

impl UncheckedRequest {
    pub fn parse(body: &[u8]) -> Result<Self, Refusal> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => Ok(Self { fields }),
            Ok(_) => Err(Refusal::invalid("the body must be a JSON object")),
            Err(error) => Err(Refusal::invalid(format!(
                "the body is not valid JSON: {error}"
            ))),
        }
    }

    pub fn email(&self) -> Result<Address, Refusal> {
        let raw = required_str(&self.fields, "email")?;
        Address::parse(raw).map_err(|e| Refusal::invalid(format!("field `email`: {e}")))
    }

    /// Checks every field. Unknown fields are ignored, so the push service may add some.
    pub fn validate(self, policy: CallbackPolicy) -> Result<PushRequest, Refusal> {
        let fields = &self.fields;
        let email = self.email()?;
        let registration = required_str(fields, "registration")?;
        if registration.is_empty()
            || registration.len() > MAX_REGISTRATION_LEN
            || !registration
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b))
        {
            return Err(Refusal::invalid(
                "field `registration` must be 1 to 128 characters of A-Z a-z 0-9 . _ : -",
            ));
        }
        let registration = registration.to_owned();
        let generation = fields
            .get("generation")
            .ok_or_else(|| missing("generation"))?
            .as_u64()
            .ok_or_else(|| {
                Refusal::invalid("field `generation` must be an unsigned 64-bit integer")
            })?;
        match required_str(fields, "type")? {
            "SUBSCRIBE" => {
                let password = required_str(fields, "password")?;
                if password.is_empty() || password.chars().count() > MAX_PASSWORD_CHARS {
                    return Err(Refusal::invalid(
                        "field `password` must be 1 to 1024 characters",
                    ));
                }
                let callback = required_str(fields, "callback")?;
                check_callback(callback, policy)?;
                Ok(PushRequest::Subscribe(Subscribe {
                    email,
                    password: password.to_owned(),
                    registration,
                    generation,
                    callback: callback.to_owned(),
                    device: device(fields)?,
                }))
            }
            "UNSUBSCRIBE" => Ok(PushRequest::Unsubscribe(Unsubscribe {
                email,
                registration,
                generation,
            })),
            _ => Err(Refusal::invalid(
                "field `type` must be \"SUBSCRIBE\" or \"UNSUBSCRIBE\"",
            )),
        }
    }
}

fn missing(field: &str) -> Refusal {
    Refusal::invalid(format!("field `{field}` is missing"))
}

fn required_str<'a>(fields: &'a Map<String, Value>, field: &str) -> Result<&'a str, Refusal> {
    match fields.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Refusal::invalid(format!(
            "field `{field}` must be a string"
        ))),
    }
}

fn device(fields: &Map<String, Value>) -> Result<Option<Device>, Refusal> {
    let object = match fields.get("device") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(Refusal::invalid("field `device` must be an object")),
    };
    let text = |name: &str| -> Result<Option<String>, Refusal> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s))
                if s.chars().count() <= MAX_DEVICE_FIELD_CHARS
                    && !s.chars().any(char::is_control) =>
            {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(Refusal::invalid(format!(
                "field `device.{name}` must be a string of at most 64 printable characters"
            ))),
        }
    };
    let device = Device {
        pin: text("pin")?,
        model: text("model")?,
    };
    Ok((device != Device::default()).then_some(device))
}

fn check_callback(callback: &str, policy: CallbackPolicy) -> Result<(), Refusal> {
    let bad = |why: &str| Refusal::invalid(format!("field `callback` {why}"));
    if callback.len() > MAX_CALLBACK_LEN {
        return Err(bad("is longer than 2048 characters"));
    }
    // The URL parser would drop or encode these; the callback is kept as sent, so refuse them.
    if callback
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(bad("must not contain spaces or control characters"));
    }
    let url = url::Url::parse(callback).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not carry a fragment"));
    }
    let host = url.host().ok_or_else(|| bad("has no host"))?;
    let literal = match host {
        url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    };
    if literal.is_some_and(|ip| !policy.permits(ip)) {
        return Err(bad(
            "must name a public host (not loopback, private, link-local or metadata)",
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if policy.local_mode && is_loopback(&host) => Ok(()),
        "http" if policy.local_mode => Err(bad("may use http only to a loopback host")),
        _ => Err(bad("must be an https URL")),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// `{"status":"subscribed",...}`
pub fn subscribed_body(subscription_id: &str, activation: crate::types::ActivationState) -> Value {
    json!({"status": "subscribed", "subscription": subscription_id, "activation": activation.as_str()})
}

pub fn status_body(status: &str) -> Value {
    json!({ "status": status })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: CallbackPolicy = CallbackPolicy { local_mode: true };
    const AWS: CallbackPolicy = CallbackPolicy { local_mode: false };

    fn subscribe_json(overrides: Value) -> Vec<u8> {
        let mut body = json!({
            "type": "SUBSCRIBE", "email": "alice@example.com", "password": "pw",
            "registration": "r-1", "generation": 3, "callback": "https://push.example.net/n/1",
        });
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        serde_json::to_vec(&body).unwrap()
    }

    fn refusal_of(overrides: Value, policy: CallbackPolicy) -> Refusal {
        UncheckedRequest::parse(&subscribe_json(overrides))
            .and_then(|r| r.validate(policy))
            .unwrap_err()
    }

    #[test]
    fn a_signature_round_trips_and_binds_timestamp_and_body() {
        let signature = sign(b"s3cret", 1_700_000_000, b"{}");
        let headers = SignatureHeaders::parse(Some("1700000000"), Some(&signature)).unwrap();
        assert!(headers.is_signed_by(b"s3cret", b"{}"));
        assert!(!headers.is_signed_by(b"other", b"{}"));
        assert!(!headers.is_signed_by(b"s3cret", b"{ }"));
        let moved = SignatureHeaders::parse(Some("1700000001"), Some(&signature)).unwrap();
        assert!(!moved.is_signed_by(b"s3cret", b"{}"));
    }

    #[test]
    fn malformed_signature_headers_are_refused() {
        let good = sign(b"k", 1, b"");
        for (ts, sig) in [
            (None, Some(good.as_str())),
            (Some("1"), None),
            (Some("-1"), Some(good.as_str())),
            (Some("1.5"), Some(good.as_str())),
            (Some("+1"), Some(good.as_str())),
            // The MAC is over "1"; "01" is another text for the same number.
            (Some("01"), Some(good.as_str())),
            (Some("1"), Some(&good[3..])),
            (Some("1"), Some("v2=00")),
            (Some("1"), Some(&good.to_uppercase().replace("V1=", "v1="))),
        ] {
            let refusal = SignatureHeaders::parse(ts, sig).unwrap_err();
            assert_eq!(refusal.code, ErrorCode::BadSignature, "{ts:?} {sig:?}");
        }
    }

    #[test]
    fn the_clock_window_is_300_seconds_either_way() {
        let headers = SignatureHeaders::parse(Some("1000"), Some(&sign(b"k", 1000, b""))).unwrap();
        let at = |s| DateTime::from_timestamp(s, 0).unwrap();
        assert!(headers.check_clock(at(1300)).is_ok());
        assert!(headers.check_clock(at(700)).is_ok());
        assert!(headers.check_clock(at(1301)).is_err());
        assert!(headers.check_clock(at(699)).is_err());
    }

    #[test]
    fn a_valid_subscribe_parses() {
        let request = UncheckedRequest::parse(&subscribe_json(
            json!({"device": {"pin": "2A3B", "model": "Bold"}}),
        ))
        .unwrap()
        .validate(AWS)
        .unwrap();
        let PushRequest::Subscribe(s) = request else {
            panic!("not a SUBSCRIBE")
        };
        assert_eq!(s.generation, 3);
        assert_eq!(s.device.unwrap().pin.as_deref(), Some("2A3B"));
    }

    #[test]
    fn each_bad_field_is_named() {
        for (overrides, field) in [
            (json!({"email": null}), "email"),
            (json!({"email": "nope"}), "email"),
            (json!({"email": 5}), "email"),
            (json!({"type": "PING"}), "type"),
            (json!({"registration": ""}), "registration"),
            (json!({"registration": "a b"}), "registration"),
            (json!({"registration": "r".repeat(129)}), "registration"),
            (json!({"generation": -1}), "generation"),
            (json!({"generation": 1.5}), "generation"),
            (json!({"generation": "3"}), "generation"),
            (json!({"password": null}), "password"),
            (json!({"password": ""}), "password"),
            (json!({"callback": "ftp://x.example/"}), "callback"),
            (json!({"callback": "http://push.example.net/"}), "callback"),
            (json!({"callback": "not a url"}), "callback"),
            (
                json!({"callback": "https://u:p@push.example.net/"}),
                "callback",
            ),
            (
                json!({"callback": "https://169.254.169.254/latest"}),
                "callback",
            ),
            (json!({"callback": "https://10.0.0.7/n"}), "callback"),
            (json!({"callback": "https://[fd00:ec2::254]/n"}), "callback"),
            (json!({"callback": "https://127.0.0.1/n"}), "callback"),
            (
                json!({"callback": "https://[::ffff:192.168.0.1]/n"}),
                "callback",
            ),
            (
                json!({"callback": "https://push.example.net/n\r\nX: y"}),
                "callback",
            ),
            (
                json!({"callback": "https://push.example.net/a b"}),
                "callback",
            ),
            (json!({"device": "Bold"}), "device"),
            (json!({"device": {"pin": "x".repeat(65)}}), "device.pin"),
        ] {
            let refusal = refusal_of(overrides.clone(), AWS);
            assert_eq!(refusal.code, ErrorCode::InvalidRequest, "{overrides}");
            assert!(
                refusal.detail.contains(&format!("`{field}`")),
                "{overrides}: {}",
                refusal.detail
            );
        }
    }

    #[test]
    fn http_callbacks_only_to_loopback_and_only_in_local_mode() {
        let loopback = json!({"callback": "http://127.0.0.1:9000/n"});
        assert_eq!(
            refusal_of(loopback.clone(), AWS).code,
            ErrorCode::InvalidRequest
        );
        assert!(
            UncheckedRequest::parse(&subscribe_json(loopback))
                .unwrap()
                .validate(LOCAL)
                .is_ok()
        );
        let remote = json!({"callback": "http://push.example.net/n"});
        assert_eq!(refusal_of(remote, LOCAL).code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn non_objects_are_invalid() {
        for body in [&b"[]"[..], b"nul", b"\"x\"", b""] {
            assert_eq!(
                UncheckedRequest::parse(body).err().unwrap().code,
                ErrorCode::InvalidRequest
            );
        }
    }
}
