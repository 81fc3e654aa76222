//! Compact byte-string encodings of numeric arrays inside stored objects.
//!
//! Large arrays (centroids, hyperplanes, codes) are stored as ONE CBOR byte
//! string of little-endian values rather than a CBOR array of numbers: the
//! object stays compact (4 bytes per f32, no per-item head) and the bytes
//! are exactly the in-memory little-endian layout, identical everywhere.
//! Use with `#[serde(with = "...")]`.

/// `Vec<f32>` as a byte string of `4 · len` little-endian bytes.
pub mod f32_le {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes the floats as one byte string.
    pub fn serialize<S: Serializer>(values: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        serde_bytes::ByteBuf::from(bytes).serialize(s)
    }

    /// Deserializes a byte string whose length is a multiple of 4.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        if !bytes.chunks_exact(4).remainder().is_empty() {
            return Err(serde::de::Error::custom(
                "f32 byte string length is not a multiple of 4",
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// `Vec<u64>` as a byte string of `8 · len` little-endian bytes.
pub mod u64_le {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes the words as one byte string.
    pub fn serialize<S: Serializer>(values: &[u64], s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::ByteBuf::from(to_bytes(values)).serialize(s)
    }

    /// Deserializes a byte string whose length is a multiple of 8.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        from_bytes(&bytes).ok_or_else(|| {
            serde::de::Error::custom("u64 byte string length is not a multiple of 8")
        })
    }

    /// The little-endian bytes of `values`.
    pub fn to_bytes(values: &[u64]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(values.len() * 8);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes
    }

    /// Words from little-endian bytes; `None` unless the length is a
    /// multiple of 8.
    pub fn from_bytes(bytes: &[u8]) -> Option<Vec<u64>> {
        if !bytes.chunks_exact(8).remainder().is_empty() {
            return None;
        }
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(c);
                    u64::from_le_bytes(w)
                })
                .collect(),
        )
    }
}

/// The little-endian bytes of `values`.
pub fn f32_to_bytes(values: &[f32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}
