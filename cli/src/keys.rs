//! `scf keys new` and `scf keys show`: ed25519 key files (mode 0600).

use std::path::PathBuf;

use clap::Subcommand;
use crypto::Keypair;
use serde::Serialize;

use crate::output::emit;
use crate::parse;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a new key file (mode 0600) and print its public key.
    New {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of a key file.
    Show {
        /// The key file.
        file: PathBuf,
    },
}

#[derive(Serialize)]
struct KeyInfo {
    public_key: String,
    file: PathBuf,
}

pub fn run(command: KeysCommand, json: bool) -> anyhow::Result<()> {
    let (file, keypair) = match command {
        KeysCommand::New { out } => {
            let keypair = Keypair::generate();
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|error| {
                    anyhow::anyhow!("cannot create directory {}: {error}", parent.display())
                })?;
            }
            genesis::write_key_file(&out, &keypair, genesis::Overwrite::Refuse)?;
            (out, keypair)
        }
        KeysCommand::Show { file } => {
            let keypair = parse::read_key(&file)?;
            (file, keypair)
        }
    };
    let info = KeyInfo {
        public_key: keypair.public().to_hex(),
        file,
    };
    emit(json, &info, |info| println!("{}", info.public_key));
    Ok(())
}
