//! Where an audit reads the chain from: a running node's HTTP API, a node's
//! home directory on disk, or a chain file made by `scf audit export`.
//!
//! A source hands out raw bytes only (the borsh block and certificate as
//! stored): deciding whether they are right is `verify.rs`'s job, and a
//! source that cannot be read is reported apart from a chain that is wrong.

use std::path::{Path, PathBuf};

use genesis::Genesis;
use ledger::store::{BlockArchive, StoreError};
use node::api::types::RawBlockAnswer;

use super::chain_file::{ChainFileError, ChainFileReader};

use crate::client::{NodeClient, NodeError};

/// The block and certificate stored at one height, undecoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawBlock {
    /// Borsh `ledger::Block`.
    pub block: Vec<u8>,
    /// Borsh `consensus::CommitCertificate`; `None` if none is stored.
    pub certificate: Option<Vec<u8>>,
}

impl From<RawBlockAnswer> for RawBlock {
    fn from(answer: RawBlockAnswer) -> RawBlock {
        RawBlock {
            block: answer.block,
            certificate: answer.certificate,
        }
    }
}

/// Why a source could not be read. This says nothing about the chain's
/// validity: the audit did not get to look at it.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(
        "cannot read the store of home {}: {source}; is it a node home (HOME/genesis.json and HOME/data/ledger)?",
        home.display()
    )]
    Store { home: PathBuf, source: StoreError },
    #[error(
        "cannot read {}: {reason}; point --home at a node's home directory (it holds genesis.json and data/ledger)",
        path.display()
    )]
    HomeFile { path: PathBuf, reason: String },
    #[error(
        "the store in {} holds chain {store}, but {} defines chain {genesis}; point --home at a home whose genesis.json matches its data",
        home.display(), home.join(node::home::GENESIS_FILE).display()
    )]
    ChainMismatch {
        home: PathBuf,
        store: crypto::ChainId,
        genesis: crypto::ChainId,
    },
    #[error(
        "{described} holds chain {found}, but {trusted_from} is chain {expected}; this is not the chain you trust. Point the audit at a copy of chain {expected}, or check that --genesis / --chain-id is the one your consortium gave you"
    )]
    OtherChain {
        described: String,
        found: crypto::ChainId,
        expected: crypto::ChainId,
        /// "your --genesis FILE", "your --chain-id".
        trusted_from: String,
    },
    #[error(transparent)]
    ChainFile(#[from] ChainFileError),
    #[error("cannot create a scratch directory for reading the store: {0}")]
    Scratch(std::io::Error),
}

/// A chain to audit: its genesis, how far it goes, and each height's block.
pub trait BlockSource {
    /// What is being read, for messages and the report: `node URL`,
    /// `home DIR`, `chain file FILE`.
    fn describe(&self) -> String;

    fn genesis(&mut self) -> Result<Genesis, SourceError>;

    /// The last committed height when asked (0: genesis only). The audit
    /// verifies up to this height, even if the chain grows meanwhile.
    fn tip(&mut self) -> Result<u64, SourceError>;

    /// What is stored at `height` (1..=tip, asked in order), or `None` if
    /// nothing is.
    fn block(&mut self, height: u64) -> Result<Option<RawBlock>, SourceError>;
}

/// A running node's HTTP API: `/v1/genesis`, `/v1/blocks/latest`,
/// `/v1/blocks/{height}` (each block view carries the borsh block and
/// certificate as hex).
#[derive(Debug)]
pub struct NodeSource {
    client: NodeClient,
}

impl NodeSource {
    pub fn new(url: &str) -> NodeSource {
        NodeSource {
            client: NodeClient::new(url),
        }
    }
}

impl BlockSource for NodeSource {
    fn describe(&self) -> String {
        format!("node {}", self.client.url())
    }

    fn genesis(&mut self) -> Result<Genesis, SourceError> {
        Ok(self.client.genesis()?)
    }

    fn tip(&mut self) -> Result<u64, SourceError> {
        match self.client.block(None) {
            Ok(view) => Ok(view.height),
            // A chain with no block yet: only genesis to check.
            Err(NodeError::Refused { status: 404, .. }) => Ok(0),
            Err(error) => Err(error.into()),
        }
    }

    fn block(&mut self, height: u64) -> Result<Option<RawBlock>, SourceError> {
        Ok(self
            .client
            .raw_block(height, crate::client::MAX_ANSWER_BYTES)?
            .map(RawBlock::from))
    }
}

/// A node's home on disk, read without writing anything and without the
/// store's lock, so the node may be running: see `ledger::store::BlockArchive`.
#[derive(Debug)]
pub struct HomeSource {
    home: PathBuf,
    genesis: Genesis,
    archive: BlockArchive,
    /// The secondary RocksDB instance's own files; removed on drop, after
    /// the archive (fields drop in order).
    _scratch: tempfile::TempDir,
}

impl HomeSource {
    /// Reads `HOME/genesis.json` and opens the store under the data
    /// directory of `HOME/config.toml` (`HOME/data` without one).
    pub fn open(home: &Path) -> Result<HomeSource, SourceError> {
        let genesis_path = home.join(node::home::GENESIS_FILE);
        let genesis = Genesis::load(&genesis_path).map_err(|error| SourceError::HomeFile {
            path: genesis_path.clone(),
            reason: error.to_string(),
        })?;
        let ledger_dir = data_dir(home)?.join("ledger");
        let scratch = tempfile::Builder::new()
            .prefix("scf-audit-")
            .tempdir()
            .map_err(SourceError::Scratch)?;
        let archive = BlockArchive::open(&ledger_dir, scratch.path()).map_err(|source| {
            SourceError::Store {
                home: home.to_path_buf(),
                source,
            }
        })?;
        Ok(HomeSource {
            home: home.to_path_buf(),
            genesis,
            archive,
            _scratch: scratch,
        })
    }

    fn store_error(&self, source: StoreError) -> SourceError {
        SourceError::Store {
            home: self.home.clone(),
            source,
        }
    }
}

/// The node's data directory, as `node::home::NodeConfig` resolves it.
fn data_dir(home: &Path) -> Result<PathBuf, SourceError> {
    let config_path = home.join(node::home::CONFIG_FILE);
    if !config_path.is_file() {
        // An auditor's copy may hold only genesis.json and the data.
        return Ok(home.join("data"));
    }
    let unreadable = |reason: String| SourceError::HomeFile {
        path: config_path.clone(),
        reason,
    };
    let text =
        std::fs::read_to_string(&config_path).map_err(|error| unreadable(error.to_string()))?;
    let config: node::home::ConfigFile =
        toml::from_str(&text).map_err(|error| unreadable(error.to_string()))?;
    Ok(if config.data_dir.is_absolute() {
        config.data_dir
    } else {
        home.join(config.data_dir)
    })
}

impl BlockSource for HomeSource {
    fn describe(&self) -> String {
        format!("home {}", self.home.display())
    }

    fn genesis(&mut self) -> Result<Genesis, SourceError> {
        Ok(self.genesis.clone())
    }

    fn tip(&mut self) -> Result<u64, SourceError> {
        let meta = self
            .archive
            .meta()
            .map_err(|error| self.store_error(error))?
            .ok_or_else(|| {
                self.store_error(StoreError::NotInitialized {
                    path: self.archive.path().to_path_buf(),
                })
            })?;
        let genesis = self.genesis.chain_id();
        if meta.chain_id != genesis {
            return Err(SourceError::ChainMismatch {
                home: self.home.clone(),
                store: meta.chain_id,
                genesis,
            });
        }
        Ok(meta.height)
    }

    fn block(&mut self, height: u64) -> Result<Option<RawBlock>, SourceError> {
        let Some(block) = self
            .archive
            .block_bytes(height)
            .map_err(|error| self.store_error(error))?
        else {
            return Ok(None);
        };
        let certificate = self
            .archive
            .certificate(height)
            .map_err(|error| self.store_error(error))?;
        Ok(Some(RawBlock { block, certificate }))
    }
}

/// A chain file written by `scf audit export`.
#[derive(Debug)]
pub struct ChainFileSource {
    reader: ChainFileReader,
}

impl ChainFileSource {
    pub fn open(path: &Path) -> Result<ChainFileSource, SourceError> {
        Ok(ChainFileSource {
            reader: ChainFileReader::open(path)?,
        })
    }
}

impl BlockSource for ChainFileSource {
    fn describe(&self) -> String {
        format!("chain file {}", self.reader.path().display())
    }

    fn genesis(&mut self) -> Result<Genesis, SourceError> {
        Ok(self.reader.genesis().clone())
    }

    fn tip(&mut self) -> Result<u64, SourceError> {
        Ok(self.reader.heights())
    }

    fn block(&mut self, height: u64) -> Result<Option<RawBlock>, SourceError> {
        Ok(Some(self.reader.next_block(height)?))
    }
}

/// What an audit trusts, independently of the source it reads.
#[derive(Clone, Debug)]
pub enum TrustedGenesis {
    /// A genesis file from the consortium (`--genesis FILE`): the audit
    /// uses it, and the source's genesis must have its chain id.
    File { path: PathBuf, genesis: Genesis },
    /// A known chain id (`--chain-id HEX`): the source's genesis must hash to it.
    ChainId(crypto::ChainId),
    /// A chain id recorded where the caller keeps it (the sink's database,
    /// written for a chain trusted on an earlier run), described by `place`.
    Recorded {
        chain_id: crypto::ChainId,
        place: String,
    },
}

impl TrustedGenesis {
    pub fn chain_id(&self) -> crypto::ChainId {
        match self {
            TrustedGenesis::File { genesis, .. } => genesis.chain_id(),
            TrustedGenesis::ChainId(id) | TrustedGenesis::Recorded { chain_id: id, .. } => *id,
        }
    }

    /// Where the trust comes from: "your --genesis FILE", "your --chain-id"…
    pub fn describe(&self) -> String {
        match self {
            TrustedGenesis::File { path, .. } => format!("your --genesis {}", path.display()),
            TrustedGenesis::ChainId(_) => "your --chain-id".to_string(),
            TrustedGenesis::Recorded { place, .. } => place.clone(),
        }
    }
}

/// A source whose genesis must be the trusted one: a node (or a file) can
/// build a whole self-consistent chain on a genesis of its own, and an audit
/// that takes the genesis from what it audits would pass it.
pub struct TrustedSource<'a> {
    inner: &'a mut dyn BlockSource,
    trusted: TrustedGenesis,
}

impl<'a> TrustedSource<'a> {
    pub fn new(inner: &'a mut dyn BlockSource, trusted: TrustedGenesis) -> TrustedSource<'a> {
        TrustedSource { inner, trusted }
    }
}

impl BlockSource for TrustedSource<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn genesis(&mut self) -> Result<Genesis, SourceError> {
        let served = self.inner.genesis()?;
        let found = served.chain_id();
        let expected = self.trusted.chain_id();
        if found != expected {
            return Err(SourceError::OtherChain {
                described: self.inner.describe(),
                found,
                expected,
                trusted_from: self.trusted.describe(),
            });
        }
        Ok(match &self.trusted {
            TrustedGenesis::File { genesis, .. } => genesis.clone(),
            TrustedGenesis::ChainId(_) | TrustedGenesis::Recorded { .. } => served,
        })
    }

    fn tip(&mut self) -> Result<u64, SourceError> {
        self.inner.tip()
    }

    fn block(&mut self, height: u64) -> Result<Option<RawBlock>, SourceError> {
        self.inner.block(height)
    }
}
