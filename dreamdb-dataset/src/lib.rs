//! DreamDB dataset SDK: the verbs users program against (create, append,
//! query, iterate, snapshot, branch, merge, delete, time travel).
//!
//! Not yet built: the Dataset SDK issue fills this crate.
