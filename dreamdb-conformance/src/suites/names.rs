//! `names` vectors: ref/tag names and modality tags (spec/0002 §6–7).

use dreamdb_core::modality::ModalityTag;
use dreamdb_core::ref_name::RefName;

use crate::{expect_eq, fields, Vector};

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    if let Some(name) = fields::opt_str(vector, "ref_name")? {
        return super::expect_outcome(
            vector,
            RefName::parse(name),
            |e| e.class().to_owned(),
            |parsed| expect_eq("round trip", name.to_owned(), parsed.to_string()),
        );
    }
    let tag = fields::str(vector, "modality")?;
    super::expect_outcome(
        vector,
        ModalityTag::parse(tag),
        |e| e.class().to_owned(),
        |parsed| {
            expect_eq("round trip", tag.to_owned(), parsed.to_string())?;
            match vector.fields.get("builtin") {
                Some(_) => expect_eq(
                    "builtin",
                    fields::bool(vector, "builtin")?,
                    parsed.is_builtin(),
                ),
                None => Ok(()),
            }
        },
    )
}
