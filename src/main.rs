//! The `xdp-tcp` command.
use std::process::ExitCode;

fn main() -> ExitCode {
    xdp_tcp::cli::main()
}
