//! The audit against a real chain (built by `tests/support/audit_chain.rs`:
//! four validators, certificates from three, committed into a RocksDB store
//! as a node would), and against copies of it tampered with in every way
//! the audit exists to catch. Each tampered case checks the height blamed
//! and the rule named.

#[path = "../../tests/support/audit_chain.rs"]
mod fixture;

use std::path::{Path, PathBuf};

use consensus::{CertificateError, CommitCertificate};
use ledger::block::{Block, tx_root};
use ledger::store::Store;
use ledger::{Output, Transaction, TxBody};

use super::chain_file::ChainFileError;
use super::verify::{CoreExposure, Violation};
use super::*;
use fixture::TestChain;

fn verify_home(home: &Path) -> Result<AuditReport, AuditFailure> {
    let mut source = HomeSource::open(home)?;
    verify_chain(&mut source, &mut NoProgress)
}

fn verify_file(path: &Path) -> Result<AuditReport, AuditFailure> {
    let mut source = ChainFileSource::open(path)?;
    verify_chain(&mut source, &mut NoProgress)
}

/// Exports the chain's home into `chain.jsonl` beside it.
fn export_chain(chain: &TestChain) -> PathBuf {
    let out = chain.dir.path().join("chain.jsonl");
    let mut source = HomeSource::open(&chain.home).expect("open the home");
    export(&mut source, &out, &mut NoProgress).expect("export");
    out
}

/// Replaces the block and/or certificate of `height` in a chain file.
fn rewrite_file(
    path: &Path,
    height: u64,
    block: Option<&Block>,
    certificate: Option<&CommitCertificate>,
) {
    let text = std::fs::read_to_string(path).expect("read the chain file");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let line = &mut lines[height as usize];
    let mut record: serde_json::Value = serde_json::from_str(line).expect("a record");
    assert_eq!(record["height"], height);
    if let Some(block) = block {
        record["block"] = hex::encode(block.to_bytes()).into();
    }
    if let Some(certificate) = certificate {
        record["certificate"] = hex::encode(borsh::to_vec(certificate).unwrap()).into();
    }
    *line = record.to_string();
    std::fs::write(path, lines.join("\n") + "\n").expect("write the chain file");
}

fn certificate_of(chain: &TestChain, height: u64) -> CommitCertificate {
    borsh::from_slice(&chain.blocks[height as usize - 1].1).expect("a certificate")
}

fn expect_invalid(outcome: Result<AuditReport, AuditFailure>) -> (u64, Violation) {
    match outcome {
        Err(AuditFailure::Invalid { height, violation }) => (height, violation),
        Err(other) => panic!("expected an invalid chain, got: {other}"),
        Ok(report) => panic!("expected an invalid chain, it verified: {report:?}"),
    }
}

#[test]
fn a_real_home_verifies_with_the_right_summary() {
    let chain = fixture::build();
    let report = verify_home(&chain.home).expect("the chain verifies");
    assert_eq!(report.chain_id, chain.chain_id);
    assert_eq!(report.chain_name, "audit-test");
    assert_eq!(report.heights, fixture::HEIGHTS);
    assert_eq!(report.transactions, fixture::TRANSACTIONS);
    assert_eq!(report.participants, fixture::PARTICIPANTS);
    assert_eq!(report.active_participants, fixture::PARTICIPANTS);
    let last = chain.block(fixture::HEIGHTS);
    assert_eq!(report.block_hash, last.hash());
    assert_eq!(report.app_hash, last.header.app_hash);
    assert_eq!(
        report.outstanding,
        vec![CoreExposure {
            core: chain.keys.core.public(),
            name: "core".into(),
            outstanding: "600000.00".into(),
            outstanding_minor: fixture::OUTSTANDING,
            limit: "1000000.00".into(),
            limit_minor: fixture::CREDIT_LIMIT,
        }]
    );
    assert!(report.transactions_per_second > 0.0);
    assert!(report.source.starts_with("home "), "{}", report.source);
}

#[test]
fn a_home_whose_node_holds_the_store_open_verifies() {
    let chain = fixture::build();
    // As a running node does: the primary instance, with its lock.
    let store = Store::open(chain.ledger_dir()).expect("the node's store");
    let report = verify_home(&chain.home).expect("verifies beside the node");
    assert_eq!(report.heights, store.height().unwrap());
    drop(store);
}

#[test]
fn an_exported_chain_file_verifies_like_its_home() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    let from_file = verify_file(&out).expect("the chain file verifies");
    let from_home = verify_home(&chain.home).unwrap();
    assert_eq!(from_file.heights, from_home.heights);
    assert_eq!(from_file.transactions, from_home.transactions);
    assert_eq!(from_file.app_hash, from_home.app_hash);
    assert_eq!(from_file.outstanding, from_home.outstanding);
    let header = std::fs::read_to_string(&out).unwrap();
    let header: serde_json::Value = serde_json::from_str(header.lines().next().unwrap()).unwrap();
    assert_eq!(header["format"], "scfledger-chain");
    assert_eq!(header["version"], 1);
    assert_eq!(header["heights"], fixture::HEIGHTS);
}

#[test]
fn a_changed_amount_fails_the_tx_root_at_its_height() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    let height = fixture::TRANSFER_HEIGHT;
    let tampered = fixture::with_amount_changed(chain.block(height));
    rewrite_file(&out, height, Some(&tampered), None);
    let (failed, violation) = expect_invalid(verify_file(&out));
    assert_eq!(failed, height);
    assert!(matches!(violation, Violation::TxRoot { .. }), "{violation}");
}

#[test]
fn a_changed_amount_with_its_tx_root_fixed_fails_the_certificate() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    let height = fixture::TRANSFER_HEIGHT;
    let mut tampered = fixture::with_amount_changed(chain.block(height));
    tampered.header.tx_root = tx_root(&tampered.txs);
    rewrite_file(&out, height, Some(&tampered), None);
    let (failed, violation) = expect_invalid(verify_file(&out));
    assert_eq!(failed, height);
    assert!(
        matches!(
            violation,
            Violation::Certificate(CertificateError::WrongValue { .. })
        ),
        "{violation}"
    );
}

#[test]
fn a_changed_amount_certified_by_a_colluding_quorum_fails_its_signature() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    let height = fixture::TRANSFER_HEIGHT;
    let mut tampered = fixture::with_amount_changed(chain.block(height));
    tampered.header.tx_root = tx_root(&tampered.txs);
    let certificate = fixture::certify(&tampered, &chain.chain_id, &fixture::quorum(&chain.keys));
    rewrite_file(&out, height, Some(&tampered), Some(&certificate));
    let (failed, violation) = expect_invalid(verify_file(&out));
    assert_eq!(failed, height);
    match violation {
        Violation::BadSignature {
            index,
            hash,
            signer,
        } => {
            assert_eq!(index, 0);
            assert_eq!(hash, tampered.txs[0].hash());
            assert_eq!(signer, chain.keys.supplier1.public());
        }
        other => panic!("expected a bad signature, got: {other}"),
    }
}

#[test]
fn a_signature_removed_from_a_certificate_loses_the_quorum() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    let height = 3;
    let mut certificate = certificate_of(&chain, height);
    certificate.signatures.pop();
    rewrite_file(&out, height, None, Some(&certificate));
    let (failed, violation) = expect_invalid(verify_file(&out));
    assert_eq!(failed, height);
    assert_eq!(
        violation,
        Violation::Certificate(CertificateError::InsufficientPower { have: 2, need: 3 })
    );
}

#[test]
fn swapped_blocks_fail_the_parent_hash_at_the_first_swapped_height() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    let (first, second) = (5, 6);
    rewrite_file(
        &out,
        first,
        Some(chain.block(second)),
        Some(&certificate_of(&chain, second)),
    );
    rewrite_file(
        &out,
        second,
        Some(chain.block(first)),
        Some(&certificate_of(&chain, first)),
    );
    let (failed, violation) = expect_invalid(verify_file(&out));
    assert_eq!(failed, first);
    assert_eq!(
        violation,
        Violation::ParentHash {
            expected: chain.block(first - 1).hash(),
            found: chain.block(second).header.parent_hash,
        }
    );
}

#[test]
fn a_changed_app_hash_fails_the_certificate() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    let height = 2;
    let mut tampered = chain.block(height).clone();
    tampered.header.app_hash.0[0] ^= 1;
    rewrite_file(&out, height, Some(&tampered), None);
    let (failed, violation) = expect_invalid(verify_file(&out));
    assert_eq!(failed, height);
    assert!(
        matches!(
            violation,
            Violation::Certificate(CertificateError::WrongValue { .. })
        ),
        "{violation}"
    );
}

#[test]
fn a_changed_app_hash_certified_by_a_colluding_quorum_fails_the_replay() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    let height = 2;
    let mut tampered = chain.block(height).clone();
    tampered.header.app_hash.0[0] ^= 1;
    let certificate = fixture::certify(&tampered, &chain.chain_id, &fixture::quorum(&chain.keys));
    rewrite_file(&out, height, Some(&tampered), Some(&certificate));
    let (failed, violation) = expect_invalid(verify_file(&out));
    assert_eq!(failed, height);
    assert_eq!(
        violation,
        Violation::AppHash {
            header: tampered.header.app_hash,
            replay: chain.block(height).header.app_hash,
        }
    );
    assert!(
        AuditFailure::Invalid { height, violation }
            .to_string()
            .starts_with("height 2: app hash mismatch: header says "),
    );
}

#[test]
fn a_certified_double_spend_fails_on_replay() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    // Block 7 spends supplier2's part; add a second, correctly signed spend
    // of the same token, and have a colluding quorum certify the block.
    let height = fixture::HEIGHTS;
    let mut tampered = chain.block(height).clone();
    let spent = match &tampered.txs[0].tx.body {
        TxBody::Transfer { token, .. } => *token,
        other => panic!("block {height} starts with a transfer, not {other:?}"),
    };
    let double_spend = Transaction {
        chain_id: chain.chain_id,
        signer: chain.keys.supplier2.public(),
        nonce: 1,
        body: TxBody::Transfer {
            token: spent,
            outputs: vec![Output {
                recipient: chain.keys.supplier2.public(),
                amount: ledger::Amount(20_000_000),
            }],
        },
    }
    .sign(&chain.keys.supplier2);
    tampered.txs.push(double_spend.clone());
    tampered.header.tx_root = tx_root(&tampered.txs);
    let certificate = fixture::certify(&tampered, &chain.chain_id, &fixture::quorum(&chain.keys));
    rewrite_file(&out, height, Some(&tampered), Some(&certificate));
    let (failed, violation) = expect_invalid(verify_file(&out));
    assert_eq!(failed, height);
    match violation {
        Violation::InvalidTransaction { index, hash, .. } => {
            assert_eq!(index, 1);
            assert_eq!(hash, double_spend.hash());
        }
        other => panic!("expected a rule violation, got: {other}"),
    }
}

#[test]
fn a_certificate_moved_to_another_height_is_refused() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    rewrite_file(&out, 3, None, Some(&certificate_of(&chain, 2)));
    let (failed, violation) = expect_invalid(verify_file(&out));
    assert_eq!(failed, 3);
    assert!(
        matches!(
            violation,
            Violation::Certificate(CertificateError::WrongHeight { .. })
        ),
        "{violation}"
    );
}

#[test]
fn a_truncated_or_reordered_chain_file_is_refused_as_unreadable() {
    let chain = fixture::build();
    let out = export_chain(&chain);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    std::fs::write(&out, lines[..4].join("\n") + "\n").unwrap();
    match verify_file(&out) {
        Err(AuditFailure::Source(SourceError::ChainFile(ChainFileError::Truncated {
            last: 3,
            heights,
            ..
        }))) => assert_eq!(heights, fixture::HEIGHTS),
        other => panic!("expected a truncated file, got {other:?}"),
    }

    let mut reordered = lines.clone();
    reordered.swap(2, 3);
    std::fs::write(&out, reordered.join("\n") + "\n").unwrap();
    match verify_file(&out) {
        Err(AuditFailure::Source(SourceError::ChainFile(ChainFileError::OutOfOrder {
            expected: 2,
            found: 3,
            ..
        }))) => {}
        other => panic!("expected heights out of order, got {other:?}"),
    }

    std::fs::write(&out, "{\"format\":\"scfledger-chain\",\"version\":2}\n").unwrap();
    let error = verify_file(&out).unwrap_err().to_string();
    assert!(error.contains("format version 2"), "{error}");
}

#[test]
fn a_block_overwritten_in_a_copied_store_fails_at_its_height() {
    let chain = fixture::build();
    let copy = chain.dir.path().join("tampered-home");
    fixture::copy_dir(&chain.home, &copy);
    let height = fixture::TRANSFER_HEIGHT;
    let tampered = fixture::with_amount_changed(chain.block(height));
    fixture::overwrite_in_store(
        &fixture::ledger_dir(&copy),
        height,
        Some(&tampered.to_bytes()),
        None,
    );
    let (failed, violation) = expect_invalid(verify_home(&copy));
    assert_eq!(failed, height);
    assert!(matches!(violation, Violation::TxRoot { .. }), "{violation}");
    // The original is untouched.
    verify_home(&chain.home).expect("the original still verifies");
}

#[test]
fn a_home_whose_genesis_is_of_another_chain_is_refused() {
    let chain = fixture::build();
    let mut other = chain.genesis.clone();
    other.chain_name = "another-chain".into();
    other.save(chain.home.join("genesis.json")).unwrap();
    let error = verify_home(&chain.home).unwrap_err();
    assert!(
        matches!(
            error,
            AuditFailure::Source(SourceError::ChainMismatch { .. })
        ),
        "{error}"
    );
}
