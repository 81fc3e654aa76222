//! Just enough XML for S3 answers: `ListBucketResult` (ListObjectsV2) and
//! `Error` documents. S3's XML is flat and namespace-free in practice, so a
//! small scanner does: it finds elements by name (with or without
//! attributes, self-closing or not), decodes the five named entities,
//! numeric character references and CDATA sections, and skips comments and
//! processing instructions. Nothing here panics on malformed input; a
//! document that does not parse is reported by the caller.

/// The text of every `<name>...</name>` element directly found in `doc`, in
/// document order (nested elements of the same name are not expected in S3
/// answers). The text is raw: pass it through [`unescape`].
pub fn elements<'a>(doc: &'a str, name: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = doc;
    let mut offset = 0;
    while let Some(pos) = rest.find('<') {
        let after = &rest[pos + 1..];
        // Skip comments, CDATA outside our elements, declarations and PIs.
        if after.starts_with("!--") {
            match after.find("-->") {
                Some(end) => {
                    offset += pos + 1 + end + 3;
                    rest = &doc[offset..];
                    continue;
                }
                None => break,
            }
        }
        let name_len = after
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(after.len());
        let tag = &after[..name_len];
        let Some(close) = after.find('>') else { break };
        let open_end = offset + pos + 1 + close + 1;
        if tag == name {
            let self_closing = after[..close].ends_with('/');
            if self_closing {
                found.push("");
                offset = open_end;
            } else {
                let closing = format!("</{name}>");
                match doc[open_end..].find(&closing) {
                    Some(end) => {
                        found.push(&doc[open_end..open_end + end]);
                        offset = open_end + end + closing.len();
                    }
                    None => break,
                }
            }
        } else {
            offset = open_end;
        }
        rest = &doc[offset..];
    }
    found
}

/// The unescaped text of the first `<name>` element, if any.
pub fn first(doc: &str, name: &str) -> Option<String> {
    elements(doc, name).first().map(|raw| unescape(raw))
}

/// Decodes entities, character references and CDATA sections in element text.
pub fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(body) = rest.strip_prefix("<![CDATA[") {
            match body.find("]]>") {
                Some(end) => {
                    out.push_str(&body[..end]);
                    rest = &body[end + 3..];
                }
                None => {
                    out.push_str(body);
                    break;
                }
            }
            continue;
        }
        if let Some(after) = rest.strip_prefix('&') {
            match decode_entity(after) {
                Some((c, len)) => {
                    out.push(c);
                    rest = &after[len..];
                }
                None => {
                    out.push('&');
                    rest = after;
                }
            }
            continue;
        }
        let stop = rest
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == '&' || c == '<')
            .map_or(rest.len(), |(i, _)| i);
        out.push_str(&rest[..stop]);
        rest = &rest[stop..];
    }
    out
}

/// Decodes the entity at the start of `text` (just after the `&`): the
/// character and how many bytes (including the `;`) it used.
fn decode_entity(text: &str) -> Option<(char, usize)> {
    let semi = text.find(';').filter(|&s| s <= 10)?;
    let entity = &text[..semi];
    let c = match entity {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = if let Some(hex) = entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
            {
                u32::from_str_radix(hex, 16).ok()?
            } else {
                entity.strip_prefix('#')?.parse().ok()?
            };
            char::from_u32(code)?
        }
    };
    Some((c, semi + 1))
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`), as used
/// by S3's `encoding-type=url`. Invalid escapes are kept literally.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One object of a listing page, as S3 reports it (key not yet decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The full key (including any connector prefix).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag as sent (quotes included).
    pub etag: String,
    /// `LastModified` text (RFC 3339).
    pub last_modified: Option<String>,
}

/// One page of a ListObjectsV2 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The objects of this page, in key order.
    pub objects: Vec<ListedObject>,
    /// Whether more pages follow.
    pub is_truncated: bool,
    /// The token for the next page.
    pub next_token: Option<String>,
}

/// Parses a `ListBucketResult` document.
pub fn parse_list(doc: &str) -> Result<ListPage, String> {
    if !doc.contains("ListBucketResult") {
        return Err(format!(
            "not a ListBucketResult document: {:?}",
            doc.chars().take(200).collect::<String>()
        ));
    }
    let url_encoded = first(doc, "EncodingType").is_some_and(|e| e.eq_ignore_ascii_case("url"));
    let mut objects = Vec::new();
    for block in elements(doc, "Contents") {
        let key = first(block, "Key").ok_or("a <Contents> without <Key>")?;
        let key = if url_encoded {
            percent_decode(&key, true)
        } else {
            key
        };
        let size = first(block, "Size")
            .ok_or_else(|| format!("no <Size> for {key:?}"))?
            .trim()
            .parse()
            .map_err(|_| format!("bad <Size> for {key:?}"))?;
        let etag = first(block, "ETag").unwrap_or_default();
        let last_modified = first(block, "LastModified");
        objects.push(ListedObject {
            key,
            size,
            etag,
            last_modified,
        });
    }
    let is_truncated = first(doc, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let next_token = first(doc, "NextContinuationToken").filter(|t| !t.is_empty());
    Ok(ListPage {
        objects,
        is_truncated,
        next_token,
    })
}

/// The `Code` and `Message` of an S3 `Error` document, if the body is one.
pub fn parse_error(doc: &str) -> (Option<String>, Option<String>) {
    if !doc.contains("<Error") {
        return (None, None);
    }
    (
        first(doc, "Code").filter(|c| !c.is_empty()),
        first(doc, "Message").filter(|m| !m.is_empty()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>p/a&amp;b &lt;c&gt;</Key><LastModified>2026-11-23T18:16:00.000Z</LastModified>
<ETag>&quot;abc&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass>
<Owner><ID>x</ID><DisplayName>x</DisplayName></Owner></Contents>
<!-- a comment with <Contents> inside -->
<Contents><Key><![CDATA[p/é&x]]></Key><ETag>"def"</ETag><Size>0</Size></Contents>
<NextContinuationToken>tok+/=</NextContinuationToken><KeyCount>2</KeyCount><ContinuationToken/>
</ListBucketResult>"#;

    #[test]
    fn list_page() {
        let page = parse_list(PAGE).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_token.as_deref(), Some("tok+/="));
        assert_eq!(page.objects.len(), 2);
        assert_eq!(page.objects[0].key, "p/a&b <c>");
        assert_eq!(page.objects[0].size, 5);
        assert_eq!(page.objects[0].etag, "\"abc\"");
        assert_eq!(
            page.objects[0].last_modified.as_deref(),
            Some("2026-11-23T18:16:00.000Z")
        );
        assert_eq!(page.objects[1].key, "p/é&x");
        assert_eq!(page.objects[1].last_modified, None);
    }

    #[test]
    fn url_encoded_keys_and_last_page() {
        let doc = "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>\
                   <Contents><Key>a%2Fb+c%25</Key><Size>1</Size><ETag>e</ETag></Contents></ListBucketResult>";
        let page = parse_list(doc).unwrap();
        assert!(!page.is_truncated);
        assert_eq!(page.next_token, None);
        assert_eq!(page.objects[0].key, "a/b c%");
    }

    #[test]
    fn empty_listing_and_garbage() {
        let page =
            parse_list("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
                .unwrap();
        assert!(page.objects.is_empty());
        assert!(parse_list("<html>oops</html>").is_err());
        assert!(parse_list("<ListBucketResult><Contents><Size>1</Size></Contents>").is_err());
    }

    #[test]
    fn entities() {
        assert_eq!(
            unescape("a&#65;&#x42;&quot;&apos;&bogus;&"),
            "aAB\"'&bogus;&"
        );
        assert_eq!(unescape("x<![CDATA[<&>]]>y"), "x<&>y");
    }

    #[test]
    fn error_document() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message></Message><RequestId>tx1</RequestId></Error>"#;
        assert_eq!(
            parse_error(doc),
            (Some("SignatureDoesNotMatch".to_owned()), None)
        );
        assert_eq!(parse_error(""), (None, None));
    }

    #[test]
    fn percent() {
        assert_eq!(percent_decode("a%20b%zz%4", false), "a b%zz%4");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }
}
