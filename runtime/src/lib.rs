//! proton-run's library: everything the runtime binary is made of, public so integration
//! tests and benchmarks can drive the pieces directly.
//!
//! The runtime never parses source config and never links the compiler: it reads an IR file.
//! `unsafe` appears only where a syscall needs it (fork), each with a `// SAFETY:` line.

pub mod cache;
pub mod config;
pub mod htpasswd;
pub mod http;
pub(crate) mod http2;
pub mod limits;
pub mod listen;
pub mod log;
pub mod master;
pub mod metrics;
pub mod notify;
pub mod ocsp;
pub mod process;
mod resolver;
pub mod shared;
#[cfg(test)]
mod testutil;
pub mod tls;
pub mod tls_cache;
pub mod tls_session_id;
pub mod upstream;
pub mod worker;
