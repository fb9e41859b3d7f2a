//! The chain file: a self-contained copy of a chain that `scf audit verify
//! --chain FILE` checks offline, written by `scf audit export`.
//!
//! # Format (version 1)
//!
//! UTF-8 JSON lines. The first line is the header; then one line per height,
//! 1 up to `heights`, in order:
//!
//! ```text
//! {"format":"scfledger-chain","version":1,"chain_id":"<64 hex>","heights":N,"genesis":{ ...genesis.json... }}
//! {"height":1,"block":"<hex of the borsh ledger::Block>","certificate":"<hex of the borsh consensus::CommitCertificate>"}
//! ...
//! {"height":N,"block":"...","certificate":"..."}
//! ```
//!
//! The bytes are exactly those the node stored, so the file proves no more
//! and no less than the node's own data: trust comes from verifying it, not
//! from where it came from. `chain_id` is informative (it must equal the
//! genesis's own chain id); `certificate` is `null` when the source had none.
//! JSON lines rather than one borsh blob so a person can look at (and a test
//! can tamper with) one block without tooling; hex doubles the size, which a
//! compressor takes back.
//!
//! A reader refuses any other `format` or `version`, a line longer than a
//! maximal block could need, and a file that ends before `heights`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crypto::ChainId;
use genesis::Genesis;
use serde::{Deserialize, Serialize};

use super::source::RawBlock;

pub const FORMAT: &str = "scfledger-chain";
pub const VERSION: u32 = 1;

/// The longest line read: a maximal block and a generous certificate, as
/// hex, with the JSON around them. Checked before a line is held in memory.
const MAX_LINE_BYTES: u64 = 2 * (ledger::block::MAX_BLOCK_BYTES as u64 + (1 << 20)) + 4096;

#[derive(Debug, thiserror::Error)]
pub enum ChainFileError {
    #[error("cannot {doing} chain file {}: {error}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not a chain file made by `scf audit export`: {reason}", path.display())]
    NotAChainFile { path: PathBuf, reason: String },
    #[error(
        "chain file {} has format version {found}; this scf reads version {VERSION}: export the chain again with this scf",
        path.display()
    )]
    Version { path: PathBuf, found: u64 },
    #[error("chain file {} line {line}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error(
        "chain file {} ends after height {last} but its header promises {heights} heights: it is truncated, export it again",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        last: u64,
        heights: u64,
    },
    #[error(
        "chain file {} line {line} holds height {found} where height {expected} belongs: its lines were reordered or removed",
        path.display()
    )]
    OutOfOrder {
        path: PathBuf,
        line: u64,
        expected: u64,
        found: u64,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    chain_id: ChainId,
    heights: u64,
    genesis: Genesis,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    height: u64,
    block: String,
    certificate: Option<String>,
}

/// Reads a chain file line by line; blocks are asked for in height order.
#[derive(Debug)]
pub struct ChainFileReader {
    path: PathBuf,
    lines: BufReader<File>,
    genesis: Genesis,
    heights: u64,
    /// Lines read so far (the header is line 1).
    line: u64,
}

impl ChainFileReader {
    pub fn open(path: &Path) -> Result<ChainFileReader, ChainFileError> {
        let file = File::open(path).map_err(|error| ChainFileError::Io {
            doing: "open",
            path: path.to_path_buf(),
            error,
        })?;
        let mut lines = BufReader::new(file);
        let mut line = 0;
        let not_a_chain_file = |reason: String| ChainFileError::NotAChainFile {
            path: path.to_path_buf(),
            reason,
        };
        let Some(text) = read_line(&mut lines, path, &mut line)? else {
            return Err(not_a_chain_file("it is empty".into()));
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|error| not_a_chain_file(format!("its first line is not JSON: {error}")))?;
        if value.get("format").and_then(|format| format.as_str()) != Some(FORMAT) {
            return Err(not_a_chain_file(format!(
                "its first line lacks \"format\": \"{FORMAT}\""
            )));
        }
        match value.get("version").and_then(|version| version.as_u64()) {
            Some(version) if version == u64::from(VERSION) => {}
            Some(found) => {
                return Err(ChainFileError::Version {
                    path: path.to_path_buf(),
                    found,
                });
            }
            None => return Err(not_a_chain_file("its header has no version".into())),
        }
        let malformed_header = |reason: String| ChainFileError::Malformed {
            path: path.to_path_buf(),
            line: 1,
            reason,
        };
        let header: Header = serde_json::from_value(value)
            .map_err(|error| malformed_header(format!("header: {error}")))?;
        let actual = header.genesis.chain_id();
        if header.chain_id != actual {
            return Err(malformed_header(format!(
                "the header names chain {}, but its genesis defines chain {actual}",
                header.chain_id
            )));
        }
        Ok(ChainFileReader {
            path: path.to_path_buf(),
            lines,
            genesis: header.genesis,
            heights: header.heights,
            line,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The number of heights the header promises.
    pub fn heights(&self) -> u64 {
        self.heights
    }

    /// The record of `height`, which must be the next line.
    pub fn next_block(&mut self, height: u64) -> Result<RawBlock, ChainFileError> {
        let Some(text) = read_line(&mut self.lines, &self.path, &mut self.line)? else {
            return Err(ChainFileError::Truncated {
                path: self.path.clone(),
                last: height.saturating_sub(1),
                heights: self.heights,
            });
        };
        let malformed = |line: u64, reason: String| ChainFileError::Malformed {
            path: self.path.clone(),
            line,
            reason,
        };
        let record: Record = serde_json::from_str(&text)
            .map_err(|error| malformed(self.line, format!("record of height {height}: {error}")))?;
        if record.height != height {
            return Err(ChainFileError::OutOfOrder {
                path: self.path.clone(),
                line: self.line,
                expected: height,
                found: record.height,
            });
        }
        let block = hex::decode(&record.block)
            .map_err(|error| malformed(self.line, format!("block is not hex: {error}")))?;
        let certificate = record
            .certificate
            .map(hex::decode)
            .transpose()
            .map_err(|error| malformed(self.line, format!("certificate is not hex: {error}")))?;
        Ok(RawBlock { block, certificate })
    }
}

/// Reads one line without its newline, refusing one longer than any valid
/// line before holding it whole; counts it in `line`.
fn read_line(
    lines: &mut BufReader<File>,
    path: &Path,
    line: &mut u64,
) -> Result<Option<String>, ChainFileError> {
    let mut text = String::new();
    let read = lines
        .by_ref()
        .take(MAX_LINE_BYTES)
        .read_line(&mut text)
        .map_err(|error| ChainFileError::Io {
            doing: "read",
            path: path.to_path_buf(),
            error,
        })?;
    if read == 0 {
        return Ok(None);
    }
    *line += 1;
    if !text.ends_with('\n') && read as u64 >= MAX_LINE_BYTES {
        return Err(ChainFileError::Malformed {
            path: path.to_path_buf(),
            line: *line,
            reason: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
        });
    }
    Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
}

/// Writes a chain file next to its destination and moves it into place on
/// [`ChainFileWriter::finish`], so a failed export never leaves a file that
/// looks complete.
#[derive(Debug)]
pub struct ChainFileWriter {
    path: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
    heights: u64,
    written: u64,
}

impl ChainFileWriter {
    pub fn create(
        path: &Path,
        genesis: &Genesis,
        heights: u64,
    ) -> Result<ChainFileWriter, ChainFileError> {
        let io = |doing: &'static str| {
            let path = path.to_path_buf();
            move |error| ChainFileError::Io { doing, path, error }
        };
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temporary = tempfile::Builder::new()
            .prefix(".scf-export-")
            .tempfile_in(directory)
            .map_err(io("create"))?;
        let mut writer = ChainFileWriter {
            path: path.to_path_buf(),
            file: BufWriter::new(temporary),
            heights,
            written: 0,
        };
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            chain_id: genesis.chain_id(),
            heights,
            genesis: genesis.clone(),
        };
        writer.write_line(&header)?;
        Ok(writer)
    }

    fn write_line(&mut self, value: &impl Serialize) -> Result<(), ChainFileError> {
        serde_json::to_writer(&mut self.file, value)
            .map_err(std::io::Error::from)
            .and_then(|()| self.file.write_all(b"\n"))
            .map_err(|error| ChainFileError::Io {
                doing: "write",
                path: self.path.clone(),
                error,
            })
    }

    /// Appends the next height's block and certificate.
    pub fn write_block(&mut self, height: u64, raw: &RawBlock) -> Result<(), ChainFileError> {
        debug_assert_eq!(height, self.written + 1, "heights are written in order");
        self.write_line(&Record {
            height,
            block: hex::encode(&raw.block),
            certificate: raw.certificate.as_ref().map(hex::encode),
        })?;
        self.written = height;
        Ok(())
    }

    /// Flushes, syncs and moves the file into place; returns its size.
    pub fn finish(self) -> Result<u64, ChainFileError> {
        let path = self.path.clone();
        let io = |doing: &'static str| {
            let path = path.clone();
            move |error| ChainFileError::Io { doing, path, error }
        };
        if self.written != self.heights {
            return Err(ChainFileError::Truncated {
                path: self.path,
                last: self.written,
                heights: self.heights,
            });
        }
        let temporary = self
            .file
            .into_inner()
            .map_err(|error| error.into_error())
            .map_err(io("write"))?;
        temporary.as_file().sync_all().map_err(io("sync"))?;
        let size = temporary.as_file().metadata().map_err(io("inspect"))?.len();
        temporary
            .persist(&path)
            .map_err(|error| error.error)
            .map_err(io("move into place"))?;
        Ok(size)
    }
}
