//! `erpdrop resolve KEY (--accepted [--id ID] | --not-sent)`: an operator settles a
//! document that is in doubt. Its earlier attempt was in flight when a run stopped and
//! it then arrived with other content: only the ERP knows whether the first version
//! reached it, and erpdrop never sends the second under another idempotency key before
//! someone has looked. The decision is recorded in the ledger with who made it and when.

use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::ledger::{DocState, Ledger, Resolution};
use crate::pass::lock_drop;
use crate::ui::Ui;

pub fn resolve(
    cfg: &Config,
    ui: &Ui,
    key: &str,
    mapping: Option<&str>,
    decision: Resolution,
    by: Option<&str>,
) -> Result<Exit, Failure> {
    let path = cfg.folders.state.join("ledger.sqlite");
    if !path.exists() {
        return Err(Failure::usage(format!(
            "there is no ledger yet ({}): nothing to resolve",
            path.display()
        )));
    }
    let Some(_lock) = lock_drop(cfg)? else {
        return Ok(Exit::Locked);
    };
    let ledger = Ledger::open(&path)?;
    let mut docs = ledger.documents_with_key(key)?;
    if let Some(m) = mapping {
        docs.retain(|d| d.mapping == m);
    }
    let doc = match docs.as_slice() {
        [] => {
            return Err(Failure::usage(match mapping {
                Some(m) => format!("the ledger has no document {key:?} of mapping {m:?}"),
                None => format!("the ledger has no document {key:?}"),
            }))
        }
        [one] => one.clone(),
        many => {
            return Err(Failure::usage(format!(
                "{key:?} is a document of several mappings ({}): name one with --mapping",
                many.iter()
                    .map(|d| d.mapping.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    if !doc.state.is_unsettled() {
        return Err(Failure::usage(format!(
            "document {key:?} of mapping {:?} is {}: there is nothing to resolve (only a document in doubt or in flight is)",
            doc.mapping,
            doc.state.as_str()
        )));
    }
    let actor = by.map(str::to_string).unwrap_or_else(current_user);
    let after = ledger.resolve(&doc.mapping, key, decision, &actor)?;
    tracing::info!(mapping = %doc.mapping, document = key, state = after.state.as_str(), by = %actor, "resolved");
    if ui.json {
        let v = serde_json::json!({
            "mapping": after.mapping,
            "document": after.key,
            "state": after.state.as_str(),
            "id": after.target_id,
            "by": actor,
            "time": after.updated,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else if !ui.quiet {
        match after.state {
            DocState::Accepted => crate::outln!(
                "{key} ({}): recorded as accepted by the ERP{}, by {actor}; it is not sent again",
                after.mapping,
                after
                    .target_id
                    .as_deref()
                    .map(|id| format!(" with id {id}"))
                    .unwrap_or_default()
            ),
            _ => crate::outln!(
                "{key} ({}): recorded as not sent, by {actor}; reprocess its file to send its content",
                after.mapping
            ),
        }
    }
    Ok(Exit::Ok)
}

/// The user running the command, as the system names them.
fn current_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}
