//! Placeholder: the conformance runner is filled in by the Foundation issue.
