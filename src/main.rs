//! The `aldfit` command line: parses the arguments (`aldfit::cli`), runs the command
//! (`aldfit::commands`), saves its outputs (`aldfit::report::save`) and prints the summary.
//! Messages and progress bars go to stderr; a terminal gets bars, a log gets nothing but the
//! messages.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use aldfit::cli::{Cli, Command};
use aldfit::commands::{self, Ui};
use aldfit::report::{self, Outputs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "aldfit: error: {}",
                aldfit::text::printable(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    aldfit::outset::install_signal_handlers();
    let threads = match &cli.command {
        Command::Fit(a) => a.run.output.threads,
        Command::Split(a) => a.run.output.threads,
        Command::Compare(a) => a.output.threads,
        Command::Validate { threads, .. }
        | Command::Bench { threads, .. }
        | Command::Synth { threads, .. } => *threads,
        Command::Inspect { .. } => aldfit::cli::Threads { threads: None },
    };
    if let Some(t) = threads.threads {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let max = 4 * cores;
        if t > max {
            anyhow::bail!(
                "--threads {t} is more than 4 threads for each of the {cores} cores here; give \
                 at most {max} (or leave it out: one per core)"
            );
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .context("cannot start the worker threads")?;
    }
    let mut ui = Terminal {
        quiet: cli.quiet,
        ..Terminal::default()
    };
    match cli.command {
        Command::Fit(args) => finish(commands::fit(&args, &mut ui)?, cli.quiet),
        Command::Split(args) => finish(commands::split(&args, &mut ui)?, cli.quiet),
        Command::Compare(args) => finish(aldfit::compare::compare(&args, &mut ui)?, cli.quiet),
        Command::Inspect { head } => {
            print!("{}", commands::inspect(&head)?);
            Ok(())
        }
        Command::Validate { head, backends, .. } => {
            let (table, ok) = commands::validate(&head, backends.as_deref(), &mut ui)?;
            print!("{table}");
            if !ok {
                anyhow::bail!("validation failed: see the lines marked FAIL above");
            }
            println!("all kernels within the docs/DESIGN.md tolerances");
            Ok(())
        }
        Command::Bench {
            backends,
            shapes,
            runs,
            json,
            stages,
            ..
        } => {
            let what = (shapes.as_str(), stages.as_deref());
            let out = commands::bench(backends.as_deref(), what, runs, json, &mut ui)?;
            print!("{out}");
            if json {
                println!();
            }
            Ok(())
        }
        Command::Synth {
            out,
            classes,
            features,
            seed,
            law,
            dtype,
            ..
        } => Ok(commands::synth(
            &out, classes, features, seed, law, dtype, &mut ui,
        )?),
    }
}

/// Saves a command's outputs, prints its summary unless `quiet`, and says what was written.
fn finish(out: Outputs, quiet: bool) -> Result<()> {
    let summary = (!quiet).then(|| out.summary.clone());
    let wall = out.run["wall_s"].as_f64().unwrap_or(f64::NAN);
    let listing = report::save(out)?;
    if let Some(summary) = summary {
        println!("{summary}");
        eprintln!("aldfit: wrote {listing} in {wall:.3} s");
    }
    Ok(())
}

/// Messages on stderr; a progress bar per stage when stderr is a terminal, else (a batch log)
/// a line every few seconds.
#[derive(Default)]
struct Terminal {
    bar: Option<(&'static str, ProgressBar)>,
    log: Option<LogProgress>,
    /// `-q`: nothing but errors.
    quiet: bool,
}

/// Where a stage stood when a log last heard of it. A stage is first heard of after its first
/// chunk, so its rate counts from there (`base` rows at `start`).
struct LogProgress {
    stage: &'static str,
    start: std::time::Instant,
    base: usize,
    last: std::time::Instant,
}

/// Seconds between progress lines in a log: `ALDFIT_PROGRESS_EVERY`, else 5.
fn log_every() -> f64 {
    std::env::var("ALDFIT_PROGRESS_EVERY")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(5.0)
}

impl Terminal {
    /// One line with the stage, rows done of total, the rate and what is left, at most every
    /// [`log_every`] seconds.
    fn log_progress(&mut self, stage: &'static str, done: usize, total: usize) {
        let now = std::time::Instant::now();
        let p = match &mut self.log {
            Some(p) if p.stage == stage && done >= p.base => p,
            _ => {
                self.log = Some(LogProgress {
                    stage,
                    start: now,
                    base: done,
                    last: now,
                });
                return;
            }
        };
        if done >= total || now.duration_since(p.last).as_secs_f64() < log_every() {
            return;
        }
        p.last = now;
        let secs = now.duration_since(p.start).as_secs_f64().max(1e-9);
        let rate = (done - p.base) as f64 / secs;
        let left = if rate > 0.0 {
            format!("about {:.0} s left", (total - done) as f64 / rate)
        } else {
            "time left unknown".into()
        };
        eprintln!(
            "aldfit: {stage}: {done}/{total} rows ({:.0} %), {rate:.0} rows/s, {left}",
            100.0 * done as f64 / total.max(1) as f64
        );
    }
}

impl Ui for Terminal {
    fn note(&mut self, msg: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some((_, bar)) => bar.suspend(|| eprintln!("aldfit: {}", aldfit::text::printable(msg))),
            None => eprintln!("aldfit: {}", aldfit::text::printable(msg)),
        }
    }

    fn progress(&mut self, stage: &'static str, done: usize, total: usize) {
        if self.quiet {
            return;
        }
        if !std::io::stderr().is_terminal() {
            self.log_progress(stage, done, total);
            return;
        }
        if self.bar.as_ref().is_none_or(|(s, _)| *s != stage) {
            self.finish();
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} rows ({eta})")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_message(stage);
            self.bar = Some((stage, bar));
        }
        if let Some((_, bar)) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    }

    fn finish(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
