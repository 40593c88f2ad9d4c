//! The integration tests: one binary (one link, one run of the harness) that drives the
//! real `erpdrop` binary through `util`, one module per user-visible theme. Run a theme
//! alone with its module path, e.g. `cargo test --test integration xml::`.

mod util;

mod batch;
mod bounded;
mod config_errors;
mod encodings;
mod fields;
mod fixed;
mod http;
mod input;
mod json;
mod ledger;
mod lifecycle;
mod login;
mod master;
mod notify;
mod records;
mod rejected;
mod retry;
mod run;
mod sheets;
mod smoke;
mod tls;
mod trust;
mod trust_http;
#[cfg(feature = "tryton")]
mod tryton;
mod validate;
mod verify;
mod xml;
