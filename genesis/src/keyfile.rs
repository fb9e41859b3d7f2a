//! Key files: one ed25519 secret key on disk, as
//! `{ "public_key": "<64 hex digits>", "secret_key": "<64 hex digits: the seed>" }`.
//!
//! On unix the file is created with mode 0600 by the `open` call itself, so
//! there is no moment at which another user could read it. A replacement is
//! written to a temporary file beside the target and renamed over it, so a
//! crash leaves the old key or the new one, never half of either. Reading
//! refuses (on unix) a file that its group or others may read or write: a
//! secret others could have copied is not the owner's alone any more, and a
//! key file that others may write could be swapped. It also checks that the
//! public key belongs to the secret, catching a file that was edited or
//! assembled from two keys. Errors name the path and never echo the secret.
//!
//! Deliberately not done here: encryption at rest (the file is protected by
//! its permissions only), generating keys (`crypto::Keypair::generate`), and
//! libp2p node identity keys (`node`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use crypto::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};

/// What [`write_key_file`] does when the file already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Fail with [`KeyFileError::AlreadyExists`]: losing a key is not undoable.
    Refuse,
    /// Atomically replace the existing file.
    Replace,
}

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {} already exists; refusing to overwrite it (remove it first, or ask to replace it)", path.display())]
    AlreadyExists { path: PathBuf },
    #[error("cannot write key file {}: {error}", path.display())]
    Write { path: PathBuf, error: io::Error },
    #[error("cannot read key file {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error(
        "key file {} has mode {mode:04o}, so users other than its owner may read or change it; refusing to use it. Restrict it with `chmod 600 {}` (and make a new key if someone else may have copied it)",
        path.display(), path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("key file {} is malformed: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "key file {}: public_key {stored} does not belong to its secret_key (which gives {derived}); the file was edited or corrupted",
        path.display()
    )]
    PublicKeyMismatch {
        path: PathBuf,
        stored: PublicKey,
        derived: PublicKey,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    public_key: String,
    secret_key: String,
}

/// Writes `keypair` to `path`, readable and writable by the owner only (unix).
pub fn write_key_file(
    path: impl AsRef<Path>,
    keypair: &Keypair,
    overwrite: Overwrite,
) -> Result<(), KeyFileError> {
    let path = path.as_ref();
    let contents = KeyFileJson {
        public_key: keypair.public().to_hex(),
        secret_key: hex::encode(keypair.seed()),
    };
    let mut text = serde_json::to_string_pretty(&contents).expect("two strings always serialize");
    text.push('\n');
    let write_error = |error| KeyFileError::Write {
        path: path.to_owned(),
        error,
    };
    match overwrite {
        Overwrite::Refuse => match create_private(path) {
            Ok(file) => match write_and_sync(file, &text) {
                Ok(()) => sync_parent_directory(path),
                Err(error) => {
                    // Do not leave half a key file behind to be mistaken for a key.
                    let _ = fs::remove_file(path);
                    Err(error)
                }
            },
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(KeyFileError::AlreadyExists {
                    path: path.to_owned(),
                });
            }
            Err(error) => Err(error),
        },
        Overwrite::Replace => replace(path, &text),
    }
    .map_err(write_error)
}

/// Reads the key file at `path`, refusing it (on unix) when its mode lets
/// anyone but its owner read or write it ([`KeyFileError::TooOpen`]), and
/// checks that its two halves belong together.
pub fn read_key_file(path: impl AsRef<Path>) -> Result<Keypair, KeyFileError> {
    let path = path.as_ref();
    let malformed = |reason: String| KeyFileError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let read_error = |error| KeyFileError::Read {
        path: path.to_owned(),
        error,
    };
    // The mode is read from the opened file, so it is the mode of what is read.
    let mut file = File::open(path).map_err(read_error)?;
    check_private(path, &file)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_error)?;
    let contents: KeyFileJson =
        serde_json::from_str(&text).map_err(|error| malformed(error.to_string()))?;
    let stored: PublicKey = contents
        .public_key
        .parse()
        .map_err(|error| malformed(format!("public_key: {error}")))?;
    let mut seed = [0u8; 32];
    let seed_hex = contents.secret_key.trim();
    let seed_hex = seed_hex.strip_prefix("0x").unwrap_or(seed_hex);
    // The message deliberately leaves out the text: it is (part of) a secret.
    hex::decode_to_slice(seed_hex, &mut seed).map_err(|_| {
        malformed("secret_key: expected 64 hex digits (a 32-byte ed25519 seed)".to_owned())
    })?;
    let keypair = Keypair::from_seed(seed);
    let derived = keypair.public();
    if derived != stored {
        return Err(KeyFileError::PublicKeyMismatch {
            path: path.to_owned(),
            stored,
            derived,
        });
    }
    Ok(keypair)
}

/// Refuses a key file whose group or other permission bits are set.
#[cfg(unix)]
fn check_private(path: &Path, file: &File) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = file.metadata().map_err(|error| KeyFileError::Read {
        path: path.to_owned(),
        error,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _file: &File) -> Result<(), KeyFileError> {
    Ok(())
}

/// Creates `path`, failing if it exists; on unix with mode 0600 from the start.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn write_and_sync(mut file: File, text: &str) -> io::Result<()> {
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Writes a private temporary file beside `path` and renames it over `path`.
/// Opening the existing file with truncation instead would keep its old,
/// possibly wider, permissions.
fn replace(path: &Path, text: &str) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let written = create_private(&temporary)
        .and_then(|file| write_and_sync(file, text))
        .and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written?;
    sync_parent_directory(path)
}

/// Makes the rename itself durable: until the directory is synced, a crash
/// may bring back the old entry.
fn sync_parent_directory(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
