//! `feedwatch completions SHELL` and `feedwatch man`: generated from the CLI definition itself,
//! so they never drift from the real flags.

use std::process::ExitCode;

use anyhow::Result;
use clap_complete::Shell;

pub fn completions(mut cli: clap::Command, shell: Shell) -> Result<ExitCode> {
    let name = cli.get_name().to_string();
    clap_complete::generate(shell, &mut cli, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn man(cli: clap::Command) -> Result<ExitCode> {
    clap_mangen::Man::new(cli).render(&mut std::io::stdout())?;
    Ok(ExitCode::SUCCESS)
}
