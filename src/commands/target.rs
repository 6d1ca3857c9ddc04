//! `target`: serve the speed-test APIs until SIGINT, SIGTERM or SIGHUP.

use std::process::ExitCode;

use crate::cli::TargetArgs;
use crate::target::{self, TargetConfig};

pub(super) fn target(args: &TargetArgs) -> anyhow::Result<ExitCode> {
    let config = TargetConfig {
        max_connections: args.max_connections,
        max_request_bytes: args.max_request_bytes,
    };
    super::listen_until_stopped(2, args.listen, |listener, address, shutdown| async move {
        tracing::info!(%address, "speed-test target listening on http://{address}");
        target::run(config, listener, shutdown).await;
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
