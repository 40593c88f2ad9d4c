//! Settling, before a run's files, the documents whose last attempt has no known
//! outcome, by asking the ERP (`target.verify`).
//!
//! A create that timed out, or that a dead run left in flight, may or may not be in the
//! ERP. Left alone, the same content is sent again under the same idempotency key (which
//! most ERPs ignore) and other content is in doubt until an operator decides. Where the
//! target can ask the ERP, the answer decides instead, recorded as an operator's
//! `erpdrop resolve` would be (by `target.verify`, in the document's history): the ERP
//! has it (accepted, with its id) or it does not (the next attempt sends the file's
//! content). An unanswered question settles nothing and stops the asking for this run.

use super::{DocContext, LookUp, Target};
use crate::config::Config;
use crate::ledger::{Ledger, LedgerError, Resolution};

/// The most documents asked about before a run: a ledger with more open documents than
/// this has a bigger problem than one run should wait on.
const MAX_ASKED: usize = 1_000;

/// What asking the ERP settled.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// The ERP has them: accepted.
    pub found: u64,
    /// The ERP does not have them: to be sent.
    pub not_found: u64,
}

/// Asks the ERP about every create of the ledger whose outcome is unknown, and records
/// its answers. Nothing is asked unless the target can (`verify`).
pub fn settle_open_documents(
    cfg: &Config,
    ledger: &Ledger,
    target: &dyn Target,
) -> Result<Settled, LedgerError> {
    let mut out = Settled::default();
    let super::Delivery::Remote(remote) = target.delivery() else {
        return Ok(out);
    };
    let open = ledger.unsettled_creates(MAX_ASKED)?;
    for doc in open {
        let Some(mapping) = cfg.mapping_named(&doc.mapping) else {
            continue;
        };
        let ctx = DocContext {
            mapping: &mapping.name,
            document_type: &mapping.document_type,
        };
        let Some(answer) = remote.look_up(&ctx, &doc.key) else {
            // the target cannot ask
            return Ok(out);
        };
        let decision = match answer {
            LookUp::Has { id } => {
                tracing::info!(mapping = %doc.mapping, document = %doc.key, id = id.as_deref().unwrap_or("-"), "verify: the ERP has this document, whose earlier attempt had no known outcome: accepted");
                out.found += 1;
                Resolution::Accepted { id }
            }
            LookUp::HasNot => {
                tracing::info!(mapping = %doc.mapping, document = %doc.key, "verify: the ERP does not have this document, whose earlier attempt had no known outcome: it will be sent");
                out.not_found += 1;
                Resolution::NotSent
            }
            LookUp::Unanswered(why) => {
                tracing::warn!(mapping = %doc.mapping, document = %doc.key, "verify: cannot ask the ERP whether it has this document: {why}");
                return Ok(out);
            }
        };
        ledger.resolve(&doc.mapping, &doc.key, decision, "target.verify")?;
    }
    Ok(out)
}
