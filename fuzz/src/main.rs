//! `staykv-fuzz <target|all> [seconds] [seed]`: fuzz for a while and print the figures.
//!
//! Set `STAYKV_FUZZ_SAVE=1` to add inputs with new signatures to `fuzz/corpus/<target>/`.

use std::process::ExitCode;
use std::time::Duration;

use staykv_fuzz::{fuzz, targets, Options};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map_or("all", String::as_str);
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let chosen: Vec<_> = targets::ALL.iter().filter(|t| which == "all" || t.name == which).collect();
    if chosen.is_empty() {
        let names: Vec<&str> = targets::ALL.iter().map(|t| t.name).collect();
        eprintln!(
            "unknown target '{which}'; targets: {} (the HTTP decoder runs in the server crate's tests)",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    let mut options = Options::new(seed, u64::MAX, Duration::from_secs(seconds));
    options.save_new = std::env::var("STAYKV_FUZZ_SAVE").is_ok_and(|v| v == "1");
    let mut failed = false;
    for target in chosen {
        match fuzz(target, &options) {
            Ok(report) => println!("{report}"),
            Err(failure) => {
                println!("CRASH {failure}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
