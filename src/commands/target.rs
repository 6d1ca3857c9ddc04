//! `target`: serve the speed-test APIs until SIGINT, SIGTERM or SIGHUP.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::TargetArgs;
use crate::target::{self, TargetConfig};

pub fn target(args: &TargetArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Handlers first: a signal sent as soon as the log says "listening" must stop us
        // cleanly, not kill us.
        let stop = super::stop_requested()?;
        let listener = super::bind(args.listen)
            .with_context(|| format!("cannot listen on {} (see --listen)", args.listen))?;
        let address = listener
            .local_addr()
            .context("cannot read the bound address")?;
        tracing::info!(%address, "speed-test target listening on http://{address}");
        let shutdown = async move {
            let signal = stop.await;
            tracing::info!("received {signal}");
        };
        let config = TargetConfig {
            max_connections: args.max_connections,
            max_request_bytes: args.max_request_bytes,
        };
        target::run(config, listener, shutdown).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
