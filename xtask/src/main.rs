//! `cargo xtask [TASK [ARGS...]]`: the developer tasks in one place (alias in .cargo/config.toml).
//!
//! Each task runs an existing script or cargo command from the repository root, with the output
//! streamed as it comes, and exits with that command's status. The logic stays in the scripts;
//! this table only names them. Without a task, or with `help`, it lists the tasks; an unknown task
//! lists them on stderr and exits 2.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// How a task is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    /// The cargo running this task (`$CARGO`), else `cargo` from `PATH`.
    Cargo,
    /// `bash SCRIPT`, the script's path relative to the repository root.
    Bash,
}

struct Task {
    name: &'static str,
    /// One line for the listing.
    about: &'static str,
    program: Program,
    args: &'static [&'static str],
    /// Whether the arguments after the task's name are appended to the command.
    extra_args: bool,
}

const TASKS: &[Task] = &[
    Task {
        name: "demo",
        about: "generate 20,000 reviews, run the pipeline, serve the storefront (reviews demo)",
        program: Program::Cargo,
        args: &["run", "--release", "-p", "reviews-cli", "--", "demo"],
        extra_args: true,
    },
    Task {
        name: "test",
        about: "the full test command: installs what it needs, starts the services (scripts/test)",
        program: Program::Bash,
        args: &["scripts/test"],
        extra_args: true,
    },
    Task {
        name: "test-fast",
        about: "every test that needs no service (the others are #[ignore]d with their reason): unit tests, the in-memory handler chain, the payload schemas, the local-lake pipeline",
        program: Program::Cargo,
        args: &["test", "--workspace"],
        extra_args: true,
    },
    Task {
        name: "bench",
        about: "throughput and peak memory of the pipeline (reviews bench, release build)",
        program: Program::Cargo,
        args: &["run", "--release", "-p", "reviews-cli", "--", "bench"],
        extra_args: true,
    },
    Task {
        name: "fuzz",
        about: "replay fuzz/corpus/ through the fuzz targets' checks, as scripts/test does",
        program: Program::Cargo,
        args: &["test", "-p", "reviews-fuzz-checks", "--test", "replay"],
        extra_args: true,
    },
    Task {
        name: "lambda-build",
        about: "build every Lambda zip with cargo-lambda, print the sizes (scripts/lambda-sizes.sh)",
        program: Program::Bash,
        args: &["scripts/lambda-sizes.sh"],
        extra_args: true,
    },
    Task {
        name: "infra-check",
        about: "offline checks of statemachine.asl.json and infra/ (scripts/infra-check.sh)",
        program: Program::Bash,
        args: &["scripts/infra-check.sh"],
        extra_args: true,
    },
    Task {
        name: "contracts",
        about: "regenerate statemachine.asl.json and functions/schemas/, check one against the other",
        program: Program::Bash,
        args: &["scripts/contracts.sh"],
        extra_args: false,
    },
    Task {
        name: "e2e",
        about: "LocalStack end to end (localstack/e2e.sh; needs scripts/services/*.sh start)",
        program: Program::Bash,
        args: &["localstack/e2e.sh"],
        extra_args: true,
    },
    Task {
        name: "storefront",
        about: "the storefront on `reviews serve` over a small fixture lake (frontend/dev/serve.sh)",
        program: Program::Bash,
        args: &["frontend/dev/serve.sh"],
        extra_args: true,
    },
    Task {
        name: "fmt-check",
        about: "cargo fmt --all -- --check, as CI runs it (.ci/run)",
        program: Program::Cargo,
        args: &["fmt", "--all", "--", "--check"],
        extra_args: false,
    },
    Task {
        name: "clippy",
        about: "cargo clippy --workspace --all-targets -- -D warnings, as CI runs it (.ci/run)",
        program: Program::Cargo,
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        extra_args: false,
    },
];

#[derive(Debug, PartialEq, Eq)]
enum Error {
    UnknownTask(String),
    NoExtraArgs(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownTask(name) => write!(f, "unknown task `{name}`"),
            Error::NoExtraArgs(name) => write!(f, "task `{name}` takes no arguments"),
        }
    }
}

/// The command a task runs, before it is started.
#[derive(Debug, PartialEq, Eq)]
struct Invocation {
    program: Program,
    args: Vec<OsString>,
}

fn find(name: &str) -> Option<&'static Task> {
    TASKS.iter().find(|t| t.name == name)
}

fn plan(name: &str, extra: Vec<OsString>) -> Result<Invocation, Error> {
    let task = find(name).ok_or_else(|| Error::UnknownTask(name.to_owned()))?;
    if !extra.is_empty() && !task.extra_args {
        return Err(Error::NoExtraArgs(task.name));
    }
    let mut args: Vec<OsString> = task.args.iter().map(OsString::from).collect();
    args.extend(extra);
    Ok(Invocation {
        program: task.program,
        args,
    })
}

fn usage() -> String {
    let width = TASKS.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let mut out = String::from(
        "cargo xtask TASK [ARGS...]: runs TASK from the repository root and exits with its status;\n\
         ARGS go to its script or command (not for fmt-check and clippy).\n\ntasks:\n",
    );
    for t in TASKS {
        out.push_str(&format!("  {:width$}  {}\n", t.name, t.about));
    }
    out
}

/// The repository root: the parent of this crate's directory.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

fn program_path(program: Program) -> OsString {
    match program {
        Program::Cargo => std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        Program::Bash => "bash".into(),
    }
}

fn shown(inv: &Invocation) -> String {
    let program = match inv.program {
        Program::Cargo => "cargo",
        Program::Bash => "bash",
    };
    let mut s = String::from(program);
    for a in &inv.args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn run(inv: Invocation) -> ExitCode {
    eprintln!("xtask: {}", shown(&inv));
    let status = Command::new(program_path(inv.program))
        .args(&inv.args)
        .current_dir(root())
        .status();
    match status {
        Ok(status) => exit_code(status),
        Err(e) => {
            eprintln!("xtask: cannot start {}: {e}", shown(&inv));
            ExitCode::from(127)
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // Killed by a signal: the shell's convention, 128 + the signal number.
        if let Some(signal) = status.signal() {
            return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
        }
    }
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(name) = args.next() else {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    };
    let name = name.to_string_lossy().into_owned();
    if matches!(name.as_str(), "help" | "-h" | "--help") {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    match plan(&name, args.collect()) {
        Ok(inv) => run(inv),
        Err(e) => {
            eprintln!("xtask: {e}\n");
            eprint!("{}", usage());
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn task_names_are_unique_and_plain() {
        let mut seen = HashSet::new();
        for t in TASKS {
            assert!(seen.insert(t.name), "task `{}` is listed twice", t.name);
            assert!(
                !t.name.is_empty()
                    && t.name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "task name `{}`",
                t.name
            );
            assert!(!matches!(t.name, "help" | "-h" | "--help"));
        }
    }

    #[test]
    fn the_listing_has_one_line_per_task() {
        let listing = usage();
        for t in TASKS {
            assert!(!t.about.contains('\n'), "{}: about is one line", t.name);
            let lines = listing
                .lines()
                .filter(|l| l.split_whitespace().next() == Some(t.name))
                .count();
            assert_eq!(lines, 1, "{} in:\n{listing}", t.name);
        }
    }

    #[test]
    fn unknown_task_is_an_error() {
        assert_eq!(
            plan("no-such-task", vec![]),
            Err(Error::UnknownTask("no-such-task".into()))
        );
        assert_eq!(plan("", vec![]), Err(Error::UnknownTask(String::new())));
    }

    #[test]
    fn extra_arguments_are_appended_or_refused() {
        let inv = plan("test", vec!["-p".into(), "reviews-lake".into()]).unwrap();
        assert_eq!(inv.program, Program::Bash);
        assert_eq!(inv.args, ["scripts/test", "-p", "reviews-lake"]);
        assert_eq!(
            plan("clippy", vec!["--fix".into()]),
            Err(Error::NoExtraArgs("clippy"))
        );
        assert_eq!(
            shown(&plan("fmt-check", vec![]).unwrap()),
            "cargo fmt --all -- --check"
        );
    }

    #[test]
    fn fmt_check_and_clippy_are_the_commands_ci_runs() {
        let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
        for name in ["fmt-check", "clippy"] {
            let command = shown(&plan(name, vec![]).unwrap());
            assert!(
                ci.lines().any(|l| l.trim() == command),
                "`{command}` is not a line of .ci/run"
            );
        }
    }

    #[test]
    fn every_script_a_task_runs_exists() {
        for t in TASKS.iter().filter(|t| t.program == Program::Bash) {
            let script = root().join(t.args[0]);
            assert!(
                script.is_file(),
                "{}: {} is missing",
                t.name,
                script.display()
            );
        }
    }
}
