//! The `hookbus` binary: a thin command line over the library.

mod cli;
#[cfg(test)]
mod generated;

fn main() -> std::process::ExitCode {
    cli::main()
}
