//! Placeholder: filled in by the Foundation issue.
