//! `keygen`: a key pair for signed messages.

use super::report::{Failure, Status, WithStatus};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// The private key file to write (mode 0600); the public key goes to PATH.pub
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Replace an existing key pair
    #[arg(long)]
    pub force: bool,
}

/// `hookbus keygen PATH`: writes the pair and prints the public key line.
pub fn keygen(args: &KeygenArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let public = hookbus::sign::keys::generate(&args.path, args.force).status(Status::Config)?;
    let _ = writeln!(
        out,
        "wrote {} (private, mode 0600) and {}; trust it on deploy hosts with\n[listen] trust = [\"{}\"]",
        args.path.display(),
        hookbus::sign::keys::pub_path(&args.path).display(),
        public.line()
    );
    Ok(())
}
