//! The integration tests: one binary (one link, one run of the harness) that drives the
//! real `erpdrop` binary through `util`, one module per user-visible theme. Run a theme
//! alone with its module path, e.g. `cargo test --test integration xml::`.

mod util;

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
mod master;
mod records;
mod run;
mod sheets;
mod smoke;
mod trust;
mod trust_http;
#[cfg(feature = "tryton")]
mod tryton;
mod validate;
mod xml;
