//! BODY and BODYSTRUCTURE (RFC 3501 §7.4.2) of a parsed message, part by part.

use super::*;

pub(super) fn text_plain(size: usize) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: vec![(istring("CHARSET"), istring("US-ASCII"))],
                id: NString(None),
                description: NString(None),
                content_transfer_encoding: istring("7BIT"),
                size: u32::try_from(size).unwrap_or(u32::MAX),
            },
            specific: SpecificFields::Text {
                subtype: istring("PLAIN"),
                number_of_lines: 0,
            },
        },
        extension_data: None,
    }
}

fn parameters(part: &MessagePart<'_>) -> Vec<(IString<'static>, IString<'static>)> {
    part.content_type()
        .and_then(|ct| ct.attributes())
        .unwrap_or_default()
        .iter()
        .map(|a| (istring(&a.name), istring(&a.value)))
        .collect()
}

fn disposition(part: &MessagePart<'_>) -> Option<Disposition<'static>> {
    let disposition = part.content_disposition()?;
    let parameters = disposition
        .attributes()
        .unwrap_or_default()
        .iter()
        .map(|a| (istring(&a.name), istring(&a.value)))
        .collect();
    Some(Disposition {
        disposition: Some((istring(&disposition.c_type), parameters)),
        tail: None,
    })
}

pub(super) fn structure(
    part: PartRef<'_, '_>,
    extended: bool,
    depth: usize,
) -> BodyStructure<'static> {
    let Some(mime) = part.part() else {
        return text_plain(0);
    };
    let (c_type, c_subtype) = kind(mime);
    let children: Vec<BodyStructure<'static>> = if depth < MAX_DEPTH {
        part.children()
            .into_iter()
            .map(|child| structure(child, extended, depth + 1))
            .collect()
    } else {
        Vec::new()
    };
    if let Ok(bodies) = Vec1::try_from(children) {
        return BodyStructure::Multi {
            bodies,
            subtype: istring(&c_subtype),
            extension_data: extended.then(|| MultiPartExtensionData {
                parameter_list: parameters(mime),
                tail: Some(disposition(mime).unwrap_or(Disposition {
                    disposition: None,
                    tail: None,
                })),
            }),
        };
    }
    let inner = match (c_type.as_str(), part.embedded()) {
        ("message", Some(inner)) if c_subtype == "rfc822" && depth < MAX_DEPTH => Some((
            envelope(inner.message),
            structure(inner, extended, depth + 1),
        )),
        _ => None,
    };
    single(mime, part.body(), extended, inner)
}

/// The lower-cased type and subtype a part's Content-Type names; text/plain without one.
fn kind(mime: &MessagePart<'_>) -> (String, String) {
    match mime.content_type() {
        Some(ct) => (
            ct.c_type.to_ascii_lowercase(),
            ct.c_subtype
                .as_deref()
                .unwrap_or_default()
                .to_ascii_lowercase(),
        ),
        None => ("text".to_owned(), "plain".to_owned()),
    }
}

/// The structure of a part that is not a multipart, of these bytes (its body as stored), with
/// the envelope and structure of the message it holds, if it is a message/rfc822.
pub(super) fn single(
    mime: &MessagePart<'_>,
    body: &[u8],
    extended: bool,
    inner: Option<(Envelope<'static>, BodyStructure<'static>)>,
) -> BodyStructure<'static> {
    let (c_type, c_subtype) = kind(mime);
    let lines = bytecount_lines(body);
    let mut parameter_list = parameters(mime);
    if c_type == "text" && parameter_list.is_empty() {
        parameter_list.push((istring("CHARSET"), istring("US-ASCII")));
    }
    let specific = match (c_type.as_str(), inner) {
        ("text", _) => SpecificFields::Text {
            subtype: istring(&c_subtype),
            number_of_lines: lines,
        },
        (_, Some((envelope, body_structure))) => SpecificFields::Message {
            envelope: Box::new(envelope),
            body_structure: Box::new(body_structure),
            number_of_lines: lines,
        },
        _ => SpecificFields::Basic {
            r#type: istring(&c_type),
            subtype: istring(&c_subtype),
        },
    };
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list,
                id: nstring(
                    mime.content_id()
                        .map(|id| format!("<{id}>"))
                        .as_deref()
                        .map(str::as_bytes),
                ),
                description: nstring(mime.content_description().map(str::as_bytes)),
                content_transfer_encoding: istring(
                    &mime
                        .content_transfer_encoding()
                        .unwrap_or("7bit")
                        .to_ascii_uppercase(),
                ),
                size: u32::try_from(body.len()).unwrap_or(u32::MAX),
            },
            specific,
        },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: NString(None),
            tail: disposition(mime),
        }),
    }
}

fn bytecount_lines(body: &[u8]) -> u32 {
    u32::try_from(body.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u32::MAX)
}
