//! `sluice-bench`: command-line front end for the Sluice benchmarks (see
//! [`sluice_bench::cli`]).

fn main() -> std::process::ExitCode {
    sluice_bench::cli::main_with_env()
}
