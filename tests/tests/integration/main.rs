//! Proton's one integration-test binary (ripgrep style): each module is a test area that
//! starts real processes through the `proton_tests` harness.

mod access;
mod backend;
mod context;
mod differential;
mod files_cache;
mod geo;
mod globals;
mod harness;
mod header_multi;
mod health;
mod keepalive;
mod limit_rate;
mod listen;
mod ocsp;
mod post_action;
mod process;
mod proxy;
mod proxy_buffering;
mod proxy_protocol;
mod proxy_tls;
mod proxy_unix;
mod realip;
mod referer;
mod refused;
mod regex_syntax;
mod request_body;
mod rewrite_log;
mod runtime;
mod safety;
mod startup;
mod static_headers;
mod tls;
mod tls_client;
mod tls_order;
mod variables;
