//! S3-compatible backend for DreamDB (placeholder: the Connectors issue fills it).
