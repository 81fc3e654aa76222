//! Connector wrappers for tests and benchmarks.
//!
//! - [`FaultInjector`] fails chosen calls (by number or by operation),
//!   loses the response of successful puts, and adds latency, so
//!   reliability tests can show that higher layers recover.
//! - [`CountingConnector`] counts calls and bytes per operation, so cost
//!   tests can assert, for example, that a warm query issues no LIST.
//!
//! Both forward everything else to the wrapped connector unchanged and pass
//! the [conformance suite](crate::conformance) when they inject nothing.

mod counting;
mod fault;

pub use counting::{CallCounts, CountingConnector, OpCounts};
pub use fault::{FaultInjector, FaultPlan};

use std::fmt;

/// The kinds of [`Connector`](crate::Connector) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// [`Connector::get`](crate::Connector::get).
    Get,
    /// [`Connector::get_range`](crate::Connector::get_range).
    GetRange,
    /// [`Connector::head`](crate::Connector::head).
    Head,
    /// [`Connector::put`](crate::Connector::put), in any mode.
    Put,
    /// [`Connector::list`](crate::Connector::list).
    List,
    /// [`Connector::delete`](crate::Connector::delete).
    Delete,
}

impl OpKind {
    /// Every kind, in declaration order.
    pub const ALL: [OpKind; 6] = [
        OpKind::Get,
        OpKind::GetRange,
        OpKind::Head,
        OpKind::Put,
        OpKind::List,
        OpKind::Delete,
    ];

    /// A short lowercase name (`get`, `get_range`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::GetRange => "get_range",
            OpKind::Head => "head",
            OpKind::Put => "put",
            OpKind::List => "list",
            OpKind::Delete => "delete",
        }
    }

    /// Position in [`OpKind::ALL`].
    const fn index(self) -> usize {
        match self {
            OpKind::Get => 0,
            OpKind::GetRange => 1,
            OpKind::Head => 2,
            OpKind::Put => 3,
            OpKind::List => 4,
            OpKind::Delete => 5,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
