//! `random` vectors: the RFC 8439 keystream and DreamDB's seeded streams
//! (spec/0009 §4.2).

use dreamdb_core::random::DeterministicStream;

use crate::{expect_eq, fields, Vector};

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    if vector.fields.contains_key("key") {
        let key: [u8; 32] = fields::hex(vector, "key")?
            .try_into()
            .map_err(|_| "key must be 32 bytes".to_owned())?;
        let nonce: [u8; 12] = fields::hex(vector, "nonce")?
            .try_into()
            .map_err(|_| "nonce must be 12 bytes".to_owned())?;
        let counter = u32::try_from(fields::u64(vector, "counter")?)
            .map_err(|_| "counter must fit in u32".to_owned())?;
        let expected = fields::hex(vector, "bytes")?;
        let mut stream = DeterministicStream::from_key(key, nonce, counter);
        let mut actual = vec![0u8; expected.len()];
        stream.fill_bytes(&mut actual);
        return expect_eq("keystream", hex::encode(expected), hex::encode(actual));
    }
    let seed = fields::u64(vector, "seed")?;
    let domain = fields::str(vector, "domain")?;
    let mut stream = DeterministicStream::from_seed(seed, domain);
    let u32s = fields::u64_array(vector, "u32")?;
    let actual: Vec<u64> = u32s.iter().map(|_| u64::from(stream.next_u32())).collect();
    expect_eq("u32 values", u32s, actual)?;
    let unit = fields::u64_array(vector, "f32_unit_bits")?;
    let actual: Vec<u64> = unit
        .iter()
        .map(|_| u64::from(stream.next_f32_unit().to_bits()))
        .collect();
    expect_eq("unit f32 bits", unit, actual)?;
    let normal = fields::u64_array(vector, "f32_normal_bits")?;
    let actual: Vec<u64> = normal
        .iter()
        .map(|_| u64::from(stream.next_f32_normal().to_bits()))
        .collect();
    expect_eq("normal f32 bits", normal, actual)
}
