//! `erpdrop watch [--interval 30s]`: a pass every interval until SIGINT/SIGTERM. A signal
//! lets the document in flight finish; the file in hand goes back to the inbox.

use crate::exit::{Exit, Failure};
use crate::pass::live::LiveOptions;
use crate::pass::{self, Mode, Settings};
use crate::stop::Stop;
use crate::ui::Ui;
use std::time::{Duration, Instant};

pub fn watch(
    load: &dyn Fn() -> Result<crate::config::Config, Failure>,
    ui: &Ui,
    settings: Settings,
    interval: Duration,
    new_ledger: bool,
) -> Result<Exit, Failure> {
    let stop = Stop::on_signals();
    // A broken config (or a folder that is a symbolic link, or a lost ledger) at start
    // is the user's to fix now; later, a pass logs it and waits.
    let cfg = load()?;
    pass::refuse_linked_folders(&cfg)?;
    pass::refuse_lost_ledger(&cfg, new_ledger)?;
    // --new-ledger is for the first pass only: a ledger lost later is refused again
    let mut new_ledger = new_ledger;
    tracing::info!(
        "watching every {}; stop with Ctrl-C or SIGTERM",
        humantime::format_duration(interval)
    );
    loop {
        let started = Instant::now();
        match load() {
            Ok(cfg) => match pass::run(
                &cfg,
                ui,
                Mode::Live(LiveOptions {
                    settings: settings.clone(),
                    only: None,
                    ignore_settle: false,
                    ignore_marker: false,
                    new_ledger: std::mem::take(&mut new_ledger),
                    stop: stop.clone(),
                }),
            ) {
                Ok(Exit::Locked) => {
                    tracing::info!("another run holds the lock; trying again next interval")
                }
                Ok(_) => {}
                Err(f) => tracing::error!("{}", f.message),
            },
            Err(f) => tracing::error!(
                "the config is not usable, skipping this pass: {}",
                f.message
            ),
        }
        if crate::output::closed() {
            // `watch | head`: the reader has what it wanted
            tracing::info!("standard output was closed; stopping");
            return Ok(Exit::Ok);
        }
        while started.elapsed() < interval {
            if stop.requested() {
                tracing::info!("stopped");
                return Ok(Exit::Ok);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if stop.requested() {
            tracing::info!("stopped");
            return Ok(Exit::Ok);
        }
    }
}
