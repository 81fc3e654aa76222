//! Every object kind's strict decoder (read by hash): never panics, and an
//! object it accepts has one spelling — encoding it again gives back
//! exactly the input bytes and hash. The Ref decoder (read by key,
//! unverified) likewise.
#![no_main]

use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{
    BlobSegment, CellStats, Fragment, Genesis, ItemManifest, Manifest, ObjectKind, RefObject,
    ScalarBucket, Schema, SpatialBucket, SpatialIndexObject, TombstoneList, VectorCompressorObject,
    VectorStorage,
};
use libfuzzer_sys::fuzz_target;

fn check<K: ObjectKind>(hash: &ContentHash, data: &[u8]) {
    if let Ok(object) = K::decode(hash, data) {
        let (bytes, again) = object
            .encode()
            .unwrap_or_else(|e| panic!("{} decoded but does not encode: {e}", K::KIND));
        assert_eq!(bytes.as_slice(), data, "{} round trip", K::KIND);
        assert_eq!(&again, hash);
    }
    // The same bytes under another name are always refused.
    assert!(K::decode(&ContentHash::of(b"another name"), data).is_err() || data == b"another name");
}

fuzz_target!(|data: &[u8]| {
    let hash = ContentHash::of(data);
    check::<Genesis>(&hash, data);
    check::<Schema>(&hash, data);
    check::<Manifest>(&hash, data);
    check::<SpatialIndexObject>(&hash, data);
    check::<VectorCompressorObject>(&hash, data);
    check::<SpatialBucket>(&hash, data);
    check::<VectorStorage>(&hash, data);
    check::<ScalarBucket>(&hash, data);
    check::<BlobSegment>(&hash, data);
    check::<Fragment>(&hash, data);
    check::<ItemManifest>(&hash, data);
    check::<TombstoneList>(&hash, data);
    check::<CellStats>(&hash, data);
    check::<RefObject>(&hash, data);
    if let Ok(r) = RefObject::decode_unverified(data) {
        assert_eq!(
            r.encode().map(|(b, _)| b).ok().as_deref(),
            Some(data),
            "ref round trip"
        );
    }
});
