//! `address` vectors: the `dreamdb://` grammar (spec/0002 §8).

use dreamdb_core::address::{Address, AddressTarget};

use crate::{expect_eq, fields, Vector};

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    let text = fields::str(vector, "text")?;
    super::expect_outcome(
        vector,
        Address::parse(text),
        |e| e.class().to_owned(),
        |address| {
            expect_eq("formatted back", text.to_owned(), address.to_string())?;
            let (target, value) = match address.target() {
                AddressTarget::Object(hash) => ("object", hash.to_hex()),
                AddressTarget::Ref(name) => ("ref", name.to_string()),
                AddressTarget::Tag(name) => ("tag", name.to_string()),
            };
            expect_eq("target", fields::str(vector, "target")?, target)?;
            expect_eq("value", fields::str(vector, "value")?.to_owned(), value)?;
            let span = address.bytes().map(|s| (s.start(), s.end()));
            let expected = match (
                fields::opt_u64(vector, "bytes_start")?,
                fields::opt_u64(vector, "bytes_end")?,
            ) {
                (Some(start), Some(end)) => Some((start, end)),
                (None, None) => None,
                _ => return Err("bytes_start and bytes_end go together".to_owned()),
            };
            expect_eq("byte locator", expected, span)
        },
    )
}
