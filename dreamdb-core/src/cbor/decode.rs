//! A hand-written CBOR parser with a strict (deterministic) and a lenient
//! (well-formedness only) mode.
//!
//! `ciborium`'s reader accepts every well-formed encoding and forgets how a
//! value was spelled, so it cannot tell canonical from non-canonical input.
//! This parser works on the raw bytes and checks each rule of
//! RFC 8949 §4.2.1 at the exact byte where it is broken.
//!
//! It is built to survive hostile input: it never panics, it checks every
//! declared length against the bytes actually remaining *before*
//! allocating, and it limits nesting to [`MAX_DEPTH`] so the recursion
//! cannot exhaust the stack.

use ciborium::value::{Integer, Value};
use half::f16;

use super::error::{CanonicalRule, CborError};
use super::MAX_DEPTH;

/// How much the parser insists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Deterministic encoding only: every [`CanonicalRule`] is enforced.
    Strict,
    /// Any well-formed encoding whose value `ciborium::Value` can hold.
    Lenient,
}

/// Parses exactly one data item from `bytes`.
pub(crate) fn decode(bytes: &[u8], mode: Mode) -> Result<Value, CborError> {
    let mut parser = Parser {
        bytes,
        pos: 0,
        mode,
    };
    let value = parser.item(0, 0)?;
    if parser.pos != bytes.len() {
        return Err(CborError::TrailingBytes { offset: parser.pos });
    }
    Ok(value)
}

/// The break code that ends an indefinite-length item.
const BREAK: u8 = 0xff;

/// At most this many array elements or map entries are reserved up front.
/// A declared count is already bounded by the remaining input, but each
/// `Value` is much larger than one input byte, and nested containers could
/// each reserve for the whole input; beyond this, vectors grow as elements
/// are actually decoded.
const PREALLOCATE_LIMIT: usize = 1024;

/// A decoded initial byte and argument.
struct Head {
    /// Offset of the initial byte.
    start: usize,
    /// Major type, 0..=7.
    major: u8,
    /// Additional information, 0..=31.
    info: u8,
    /// The argument; `None` for additional information 31 (indefinite
    /// length, or break in major type 7).
    arg: Option<u64>,
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    mode: Mode,
}

impl Parser<'_> {
    fn strict(&self) -> bool {
        self.mode == Mode::Strict
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn non_canonical(rule: CanonicalRule, offset: usize) -> CborError {
        CborError::NonCanonical { rule, offset }
    }

    /// Takes `n` bytes, or reports the item starting at `item_start` as
    /// truncated.
    fn take(&mut self, n: usize, item_start: usize) -> Result<&[u8], CborError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(CborError::Truncated { offset: item_start })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    /// Reads a head. `parent` is the offset of the enclosing item, blamed if
    /// the input ends before this item's first byte.
    fn head(&mut self, parent: usize) -> Result<Head, CborError> {
        let start = self.pos;
        let Some(&initial) = self.bytes.get(start) else {
            return Err(CborError::Truncated { offset: parent });
        };
        self.pos += 1;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let width = match info {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            28..=30 => {
                return Err(CborError::Malformed {
                    offset: start,
                    reason: "reserved additional information value (28-30)",
                })
            }
            _ => {
                return Ok(Head {
                    start,
                    major,
                    info,
                    arg: None,
                })
            }
        };
        let arg = if width == 0 {
            u64::from(info)
        } else {
            let mut buf = [0u8; 8];
            let raw = self.take(width, start)?;
            buf[8 - width..].copy_from_slice(raw);
            u64::from_be_bytes(buf)
        };
        // Major type 7 uses the argument for simple values and floats, whose
        // rules are checked by the caller.
        if self.strict() && major != 7 {
            let shortest = match arg {
                0..=23 => 0,
                24..=0xff => 1,
                0x100..=0xffff => 2,
                0x1_0000..=0xffff_ffff => 4,
                _ => 8,
            };
            if width != shortest {
                return Err(Self::non_canonical(CanonicalRule::ShortestHead, start));
            }
        }
        Ok(Head {
            start,
            major,
            info,
            arg: Some(arg),
        })
    }

    /// Converts a declared length to `usize`, refusing anything longer than
    /// the remaining input (each element needs at least `min_bytes_each`).
    fn checked_len(
        &self,
        arg: u64,
        min_bytes_each: usize,
        start: usize,
    ) -> Result<usize, CborError> {
        let len = usize::try_from(arg).map_err(|_| CborError::Truncated { offset: start })?;
        let needed = len
            .checked_mul(min_bytes_each)
            .ok_or(CborError::Truncated { offset: start })?;
        if needed > self.remaining() {
            return Err(CborError::Truncated { offset: start });
        }
        Ok(len)
    }

    /// Enforces the nesting limit for a container at `depth` (1 = top level).
    fn enter(depth: usize, start: usize) -> Result<(), CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep {
                offset: start,
                limit: MAX_DEPTH,
            });
        }
        Ok(())
    }

    /// True if the next byte is a break code; consumes it.
    fn at_break(&mut self) -> bool {
        if self.bytes.get(self.pos) == Some(&BREAK) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Parses one data item. `depth` counts the containers (arrays, maps,
    /// tags) around it; `parent` is the offset of the innermost one.
    fn item(&mut self, depth: usize, parent: usize) -> Result<Value, CborError> {
        let head = self.head(parent)?;
        let start = head.start;
        match (head.major, head.arg) {
            (0, Some(n)) => Ok(Value::Integer(Integer::from(n))),
            (1, Some(n)) => {
                let value = -1 - i128::from(n);
                Integer::try_from(value)
                    .map(Value::Integer)
                    .map_err(|_| CborError::Malformed {
                        offset: start,
                        reason: "negative integer out of range",
                    })
            }
            (0 | 1 | 6, None) => Err(CborError::Malformed {
                offset: start,
                reason: "additional information 31 is not allowed for integers and tags",
            }),
            (2, _) => self.string(&head).map(Value::Bytes),
            (3, _) => {
                let bytes = self.string(&head)?;
                String::from_utf8(bytes)
                    .map(Value::Text)
                    .map_err(|_| CborError::Malformed {
                        offset: start,
                        reason: "text string is not valid UTF-8",
                    })
            }
            (4, arg) => self.array(arg, depth + 1, start),
            (5, arg) => self.map(arg, depth + 1, start),
            (6, Some(tag)) => {
                Self::enter(depth + 1, start)?;
                let inner = self.item(depth + 1, start)?;
                Ok(Value::Tag(tag, Box::new(inner)))
            }
            _ => self.simple_or_float(&head),
        }
    }

    /// Reads the content of a byte or text string (major type 2 or 3).
    /// Indefinite-length text strings have each chunk checked for UTF-8, as
    /// RFC 8949 §3.2.3 requires.
    fn string(&mut self, head: &Head) -> Result<Vec<u8>, CborError> {
        let start = head.start;
        if let Some(arg) = head.arg {
            let len = self.checked_len(arg, 1, start)?;
            return Ok(self.take(len, start)?.to_vec());
        }
        if self.strict() {
            return Err(Self::non_canonical(CanonicalRule::IndefiniteLength, start));
        }
        let mut out = Vec::new();
        loop {
            if self.at_break() {
                return Ok(out);
            }
            let chunk = self.head(start)?;
            let Some(arg) = chunk.arg.filter(|_| chunk.major == head.major) else {
                return Err(CborError::Malformed {
                    offset: chunk.start,
                    reason: "a chunk of an indefinite-length string must be a \
                             definite-length string of the same major type",
                });
            };
            let len = self.checked_len(arg, 1, chunk.start)?;
            let bytes = self.take(len, chunk.start)?;
            if head.major == 3 && std::str::from_utf8(bytes).is_err() {
                return Err(CborError::Malformed {
                    offset: chunk.start,
                    reason: "text string is not valid UTF-8",
                });
            }
            out.extend_from_slice(bytes);
        }
    }

    fn array(&mut self, arg: Option<u64>, depth: usize, start: usize) -> Result<Value, CborError> {
        Self::enter(depth, start)?;
        match arg {
            Some(arg) => {
                let len = self.checked_len(arg, 1, start)?;
                let mut items = Vec::with_capacity(len.min(PREALLOCATE_LIMIT));
                for _ in 0..len {
                    items.push(self.item(depth, start)?);
                }
                Ok(Value::Array(items))
            }
            None if self.strict() => {
                Err(Self::non_canonical(CanonicalRule::IndefiniteLength, start))
            }
            None => {
                let mut items = Vec::new();
                while !self.at_break() {
                    items.push(self.item(depth, start)?);
                }
                Ok(Value::Array(items))
            }
        }
    }

    fn map(&mut self, arg: Option<u64>, depth: usize, start: usize) -> Result<Value, CborError> {
        Self::enter(depth, start)?;
        match arg {
            Some(arg) => {
                let len = self.checked_len(arg, 2, start)?;
                let mut entries = Vec::with_capacity(len.min(PREALLOCATE_LIMIT));
                let mut previous_key: Option<(usize, usize)> = None;
                for _ in 0..len {
                    let key_start = self.pos;
                    let key = self.item(depth, start)?;
                    let key_end = self.pos;
                    if self.strict() {
                        if let Some((prev_start, prev_end)) = previous_key {
                            let prev = &self.bytes[prev_start..prev_end];
                            let this = &self.bytes[key_start..key_end];
                            match prev.cmp(this) {
                                std::cmp::Ordering::Less => {}
                                std::cmp::Ordering::Equal => {
                                    return Err(Self::non_canonical(
                                        CanonicalRule::DuplicateMapKey,
                                        key_start,
                                    ))
                                }
                                std::cmp::Ordering::Greater => {
                                    return Err(Self::non_canonical(
                                        CanonicalRule::MapKeyOrder,
                                        key_start,
                                    ))
                                }
                            }
                        }
                        previous_key = Some((key_start, key_end));
                    }
                    let value = self.item(depth, start)?;
                    entries.push((key, value));
                }
                Ok(Value::Map(entries))
            }
            None if self.strict() => {
                Err(Self::non_canonical(CanonicalRule::IndefiniteLength, start))
            }
            None => {
                let mut entries = Vec::new();
                while !self.at_break() {
                    let key = self.item(depth, start)?;
                    if self.bytes.get(self.pos) == Some(&BREAK) {
                        return Err(CborError::Malformed {
                            offset: self.pos,
                            reason: "indefinite-length map ends after a key without a value",
                        });
                    }
                    let value = self.item(depth, start)?;
                    entries.push((key, value));
                }
                Ok(Value::Map(entries))
            }
        }
    }

    /// Major type 7: simple values, floats and the break code.
    fn simple_or_float(&mut self, head: &Head) -> Result<Value, CborError> {
        let start = head.start;
        let Some(arg) = head.arg else {
            return Err(CborError::Malformed {
                offset: start,
                reason: "break code outside an indefinite-length item",
            });
        };
        match head.info {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 => Ok(Value::Null),
            24 if arg < 32 => Err(CborError::Malformed {
                offset: start,
                reason: "two-byte simple value below 32 (RFC 8949 §3.3)",
            }),
            25 => {
                let bits = u16::try_from(arg).map_err(|_| CborError::Malformed {
                    offset: start,
                    reason: "half-precision float out of range",
                })?;
                let value = f16::from_bits(bits).to_f64();
                if self.strict() && value.is_nan() && bits != 0x7e00 {
                    return Err(Self::non_canonical(CanonicalRule::CanonicalNan, start));
                }
                Ok(Value::Float(value))
            }
            26 => {
                let bits = u32::try_from(arg).map_err(|_| CborError::Malformed {
                    offset: start,
                    reason: "single-precision float out of range",
                })?;
                let value = f32::from_bits(bits);
                if self.strict() {
                    if value.is_nan() {
                        return Err(Self::non_canonical(CanonicalRule::CanonicalNan, start));
                    }
                    if super::encode::f32_fits_f16(value) {
                        return Err(Self::non_canonical(CanonicalRule::ShortestFloat, start));
                    }
                }
                Ok(Value::Float(f64::from(value)))
            }
            27 => {
                let value = f64::from_bits(arg);
                if self.strict() {
                    if value.is_nan() {
                        return Err(Self::non_canonical(CanonicalRule::CanonicalNan, start));
                    }
                    if super::encode::f64_fits_f32(value) {
                        return Err(Self::non_canonical(CanonicalRule::ShortestFloat, start));
                    }
                }
                Ok(Value::Float(value))
            }
            // `undefined` (23), unassigned simple values (0..=19, and 32..=255
            // in the two-byte form). `ciborium::Value` has no variant for
            // them, so even the lenient mode must refuse them.
            _ => Err(Self::non_canonical(CanonicalRule::SimpleValue, start)),
        }
    }
}
