//! `spatial` vectors: spatial keys (LSH, IVF with ties), RaBitQ codes and
//! factors, the fast estimator's quantised query and estimates, and the
//! bytes and hash of a trained index (spec/0004, spec/0010). Every expected value comes from the scalar reference path.

use dreamdb_protocol::spatial::bytes::{f32_to_bytes, u64_le};
use dreamdb_protocol::spatial::metric::prepare;
use dreamdb_protocol::spatial::rabitq::quantised::QuantisedQuery;
use dreamdb_protocol::spatial::rabitq::{DEFAULT_EPSILON0, FACTORS};
use dreamdb_protocol::spatial::{IvfIndex, IvfParams, Metric, RaBitQ, SpatialIndex};

use crate::{expect_eq, fields, Vector};

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    match fields::str(vector, "type")? {
        "lsh" => lsh(vector),
        "ivf-assign" => ivf_assign(vector),
        "rabitq" => rabitq(vector),
        "rabitq-query" => rabitq_query(vector),
        "ivf-train" => ivf_train(vector),
        other => Err(format!("unknown spatial vector type {other:?}")),
    }
}

fn floats(vector: &Vector, name: &str) -> Result<Vec<f32>, String> {
    let bytes = fields::hex(vector, name)?;
    if !bytes.chunks_exact(4).remainder().is_empty() {
        return Err(format!("field {name:?} is not a whole number of f32"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The description decodes and re-encodes to the same bytes.
fn index(vector: &Vector) -> Result<SpatialIndex, String> {
    let bytes = fields::hex(vector, "bytes")?;
    let index = SpatialIndex::from_cbor(&bytes).map_err(err)?;
    expect_eq(
        "re-encoded description",
        bytes,
        index.to_cbor().map_err(err)?,
    )?;
    Ok(index)
}

fn lsh(vector: &Vector) -> Result<(), String> {
    let SpatialIndex::Lsh(lsh) = index(vector)? else {
        return Err("bytes are not an LSH description".to_owned());
    };
    let inputs = floats(vector, "inputs")?;
    let mut keys = Vec::new();
    for row in inputs.chunks_exact(lsh.dim().max(1)) {
        keys.extend(lsh.keys(row).map_err(err)?.into_iter().map(u64::from));
    }
    expect_eq("keys", fields::u64_array(vector, "keys")?, keys)?;
    let nprobe = fields::u64(vector, "nprobe")? as usize;
    let probe = lsh.probe(&inputs[..lsh.dim()], nprobe).map_err(err)?;
    expect_eq(
        "probe",
        fields::u64_array(vector, "probe")?,
        probe.into_iter().map(u64::from).collect(),
    )
}

fn ivf_assign(vector: &Vector) -> Result<(), String> {
    let SpatialIndex::Ivf(ivf) = index(vector)? else {
        return Err("bytes are not an IVF description".to_owned());
    };
    let queries = floats(vector, "queries")?;
    let cells: Vec<u64> = ivf
        .assign(&queries)
        .map_err(err)?
        .into_iter()
        .map(u64::from)
        .collect();
    expect_eq("cells", fields::u64_array(vector, "cells")?, cells)?;
    let reference: Vec<u64> = ivf
        .assign_reference(&queries)
        .map_err(err)?
        .into_iter()
        .map(u64::from)
        .collect();
    expect_eq(
        "reference cells",
        fields::u64_array(vector, "cells")?,
        reference,
    )?;
    if let Some(nprobe) = fields::opt_u64(vector, "nprobe")? {
        let mut probes = Vec::new();
        for q in queries.chunks_exact(ivf.dim()) {
            probes.extend(ivf.probe(q, nprobe as usize).map_err(err)?);
        }
        expect_eq(
            "probes",
            fields::u64_array(vector, "probes")?,
            probes.into_iter().map(u64::from).collect(),
        )?;
    }
    Ok(())
}

fn rabitq(vector: &Vector) -> Result<(), String> {
    let desc = fields::hex(vector, "compressor")?;
    let rq = RaBitQ::from_cbor(&desc).map_err(err)?;
    expect_eq(
        "re-encoded compressor",
        desc,
        rq.description().to_cbor().map_err(err)?,
    )?;
    let centroid = floats(vector, "centroid")?;
    let inputs = floats(vector, "inputs")?;
    let (codes, factors) = rq.encode_batch(&inputs, Some(&centroid)).map_err(err)?;
    expect_eq(
        "codes",
        fields::hex(vector, "bytes")?,
        u64_le::to_bytes(&codes),
    )?;
    expect_eq(
        "factors",
        fields::hex(vector, "factors")?,
        f32_to_bytes(&factors),
    )
}

/// The fast estimator's quantised query and estimates (spec 0010 §5.1).
fn rabitq_query(vector: &Vector) -> Result<(), String> {
    let rq = RaBitQ::from_cbor(&fields::hex(vector, "compressor")?).map_err(err)?;
    let centroid = floats(vector, "centroid")?;
    let inputs = floats(vector, "inputs")?;
    let query = prepare(rq.metric(), &floats(vector, "query")?, 0).map_err(err)?;
    let (codes, factors) = rq.encode_batch(&inputs, Some(&centroid)).map_err(err)?;
    let mut rotated = Vec::new();
    rq.rotate_into(&query, &mut rotated);
    let rotated_centroid = rq.rotation().apply(&centroid);
    let mut qq = QuantisedQuery::new();
    rq.quantise_query(
        &query,
        &rotated,
        Some((&centroid, &rotated_centroid)),
        &mut Vec::new(),
        &mut qq,
    );
    expect_eq("levels", fields::hex(vector, "bytes")?, qq.levels())?;
    let (lo, delta) = qq.scale();
    expect_eq(
        "scale",
        fields::hex(vector, "scale")?,
        f32_to_bytes(&[lo, delta]),
    )?;
    let wpv = rq.words_per_vector();
    let mut distances = Vec::new();
    let mut bounds = Vec::new();
    for (code, f) in codes
        .chunks_exact(wpv.max(1))
        .zip(factors.chunks_exact(FACTORS))
    {
        let e = rq.fast_estimate(&qq, code, f, DEFAULT_EPSILON0);
        distances.push(e.distance);
        bounds.push(e.bound);
    }
    expect_eq(
        "distances",
        fields::hex(vector, "distances")?,
        f32_to_bytes(&distances),
    )?;
    expect_eq(
        "bounds",
        fields::hex(vector, "bounds")?,
        f32_to_bytes(&bounds),
    )
}

fn ivf_train(vector: &Vector) -> Result<(), String> {
    let metric = match fields::str(vector, "metric")? {
        "cosine" => Metric::Cosine,
        "l2" => Metric::L2,
        "ip" => Metric::InnerProduct,
        other => return Err(format!("unknown metric {other:?}")),
    };
    let params = IvfParams {
        metric,
        k: fields::u64(vector, "k")? as u32,
        seed: fields::u64(vector, "seed")?,
        iterations: fields::u64(vector, "iterations")? as u32,
        sample: fields::opt_u64(vector, "sample")?.map(|s| s as u32),
    };
    let dim = fields::u64(vector, "dim")? as usize;
    let trained = IvfIndex::train(params, dim, &floats(vector, "training")?).map_err(err)?;
    expect_eq(
        "trained description",
        fields::hex(vector, "bytes")?,
        trained.to_cbor().map_err(err)?,
    )?;
    expect_eq(
        "hash",
        fields::str(vector, "bytes_hash")?.to_owned(),
        trained.hash().map_err(err)?.to_hex(),
    )
}
