//! Measuring `feedwatch` alone from a benchmark.
//!
//! Linux starts a child's peak RSS at its parent's when it execs (the old address space's high
//! water mark is kept), and a benchmark holds its whole corpus in memory; so feedwatch is
//! started from a small fresh copy of the benchmark's binary (`--measure-child`), which runs it,
//! measures it with [`wait4`] and prints what it measured.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Measured, wait4};

/// The first argument that makes a benchmark's binary measure one command instead.
const MEASURE: &str = "--measure-child";

/// Runs `feedwatch --config CONFIG ARGS...` with its standard output in `stdout` (or nowhere)
/// and measures it alone. `FEEDWATCH_BIN=/path` measures another build (say, an older one) on
/// the same input.
pub fn run_feedwatch(config: &Path, args: &[&str], stdout: Option<&Path>) -> Measured {
    let binary =
        std::env::var_os("FEEDWATCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_feedwatch").into());
    let output = Command::new(std::env::current_exe().expect("own path"))
        .arg(MEASURE)
        .arg(stdout.map_or_else(|| "-".into(), |path| path.as_os_str().to_owned()))
        .arg(binary)
        .arg("--config")
        .arg(config)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("start the measuring process");
    assert!(output.status.success(), "feedwatch failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().expect("a number from the measuring process"))
        .collect();
    Measured {
        code: 0,
        wall: Duration::from_micros(numbers[0]),
        cpu: Duration::from_micros(numbers[1]),
        peak_rss_kib: numbers[2] as i64,
    }
}

/// First thing in a benchmark's `main`: when the process was started as
/// `--measure-child STDOUT PROGRAM ARGS...`, it runs the program with its output in the file
/// STDOUT (`-`: nowhere), prints its wall time and CPU time in microseconds and its peak RSS
/// in KiB, and exits.
pub fn measure_child_if_asked() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some(MEASURE) {
        return;
    }
    let stdout = match args[1].as_str() {
        "-" => Stdio::null(),
        path => std::fs::File::create(path)
            .expect("create the output file")
            .into(),
    };
    let measured = wait4(
        Command::new(&args[2])
            .args(&args[3..])
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("ALL_PROXY")
            .stdout(stdout),
    );
    if measured.code != 0 {
        std::process::exit(1);
    }
    println!(
        "{} {} {}",
        measured.wall.as_micros(),
        measured.cpu.as_micros(),
        measured.peak_rss_kib
    );
    std::process::exit(0);
}
