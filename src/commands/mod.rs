//! What each sub-command does, from parsed flags to exit status; errors stop here as `anyhow`.

mod run_once;
mod serve;
mod transfer;

use std::io::{self, Write};
use std::process::ExitCode;

use crate::cli::{Command, LogFormat};
use crate::logging;

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => {
            logging::init("info", args.log_format);
            serve::serve(args)
        }
        Command::RunOnce(args) => {
            logging::init("warn", LogFormat::Text);
            run_once::run_once(&args)
        }
        Command::Export(args) => transfer::export(&args),
        Command::Import(args) => transfer::import(&args),
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error worth a message.
fn write_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
