//! `serve`: bind, open the store, and run until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::ServeArgs;
use crate::scheduler::Schedule;
use crate::serve::{self, ServeConfig};
use crate::store::Store;

/// Worker threads: requests are short and the machines small.
const WORKERS: usize = 2;

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let plan = args.plan.plan();
    if args.retest_below.is_some() && !plan.is_set() {
        bail!(
            "--retest-below needs a plan to compare with: add --plan-download and/or --plan-upload"
        );
    }
    // A locked database must stop a second instance at once, before it binds or tests.
    let store = Store::open(&args.store.db)?;
    let config = ServeConfig {
        schedule: Schedule {
            interval: args.interval,
            splay: args.splay,
            start_delay: args.start_delay,
            retest_after: args.retest_below.map(|_| args.retest_after),
        },
        runner: args.speedtest.runner_config(),
        retention: args.retention,
        plan,
        retest_below: args.retest_below,
        manual_runs: args.enable_run_endpoint.then_some(args.min_manual_gap),
        data_budget: args.data_budget,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {} (see --listen)", args.listen))?;
        let address = listener
            .local_addr()
            .context("cannot read the bound address")?;
        tracing::info!(%address, db = %store.path().display(), "listening on http://{address}");
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        };
        serve::run(config, listener, store, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
