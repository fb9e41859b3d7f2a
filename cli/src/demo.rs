//! `scf demo`: the whole life of a receivable on a local testnet, step by
//! step: a credit line, a confirmation, two payments down the supply chain,
//! a financing, the maturity, the settlement, the audit, and the final
//! lineage tree.
//!
//! It uses the testnet of `--dir` if one is running there, and otherwise
//! starts one (as a child `scf testnet`, in `--dir` or a temporary
//! directory) and stops it at the end. Each participant talks to a
//! different validator, to show that they all share one ledger. The demo
//! trusts the testnet's own `DIR/genesis.json` (it made it), for signing and
//! for the audit, and pins nothing in the user's config directory. Invoice and
//! payment references carry the time, so the demo can run again on the same
//! chain.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use ledger::{Origin, Timestamp, TokenId};
use serde::Serialize;

use crate::audit;
use crate::client::NodeClient;
use crate::explain::CliError;
use crate::parse;
use crate::testnet::{TESTNET_FILE, TestnetFile, log_tail};
use crate::trace;
use crate::transactions::{Session, TxOutcome};
use crate::trust::Trust;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// A testnet directory: used if its testnet is running, else one is
    /// started there (and stopped at the end). Default: a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Validators of a testnet the demo starts.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// How far away the receivable's maturity is.
    #[arg(long, default_value_t = 20)]
    pub maturity_seconds: u64,
}

/// What `scf demo --json` prints.
#[derive(Serialize)]
struct DemoReport {
    chain_id: String,
    root: String,
    steps: Vec<DemoStep>,
    trace: trace::Trace,
}

#[derive(Serialize)]
struct DemoStep {
    step: String,
    #[serde(flatten)]
    outcome: TxOutcome,
}

/// A testnet this demo started: stopped (and its directory removed, if
/// temporary) when dropped.
struct StartedTestnet {
    child: Child,
    stdin: Option<ChildStdin>,
    _temporary: Option<tempfile::TempDir>,
}

impl Drop for StartedTestnet {
    fn drop(&mut self) {
        // Closing its standard input stops it; it stops its validators.
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(args: DemoArgs, json: bool) -> anyhow::Result<()> {
    let (dir, started) = match &args.dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temporary = tempfile::Builder::new()
                .prefix("scf-demo-")
                .tempdir()
                .context("creating a temporary directory")?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    let mut testnet = None;
    if !running(&dir) {
        testnet = Some(start_testnet(&dir, args.validators, started, json)?);
    } else if !json {
        println!("using the testnet running in {}", dir.display());
    }
    let result = lifecycle(&dir, args.maturity_seconds, json);
    if testnet.is_some() && !json {
        println!("stopping the testnet");
    }
    drop(testnet);
    result
}

/// Whether the testnet of `dir` answers.
fn running(dir: &Path) -> bool {
    let Ok(file) = TestnetFile::load(dir) else {
        return false;
    };
    file.validators.iter().all(|validator| {
        NodeClient::new(&validator.api)
            .status()
            .is_ok_and(|status| status.chain_id.to_string() == file.chain_id)
    })
}

fn start_testnet(
    dir: &Path,
    validators: usize,
    temporary: Option<tempfile::TempDir>,
    json: bool,
) -> anyhow::Result<StartedTestnet> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("testnet.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    if !json {
        println!(
            "starting a testnet of {validators} validators in {}",
            dir.display()
        );
    }
    let mut child = Command::new(std::env::current_exe()?)
        .arg("testnet")
        .arg("--validators")
        .arg(validators.to_string())
        .arg("--dir")
        .arg(dir)
        .arg("--stop-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting `scf testnet`")?;
    let stdin = child.stdin.take();
    let mut testnet = StartedTestnet {
        child,
        stdin,
        _temporary: temporary,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if dir.join(TESTNET_FILE).exists() && running(dir) {
            return Ok(testnet);
        }
        if let Some(status) = testnet.child.try_wait()? {
            bail!(
                "the testnet stopped ({status}); its log {}:\n{}",
                log_path.display(),
                log_tail(&log_path)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the testnet did not start within 120 s; see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

struct Demo<'a> {
    file: &'a TestnetFile,
    trust: Trust,
    json: bool,
    steps: Vec<DemoStep>,
    number: usize,
}

const STEPS: usize = 9;
const WAIT: Duration = Duration::from_secs(60);

impl Demo<'_> {
    /// A session for a demo participant, on validator `index` (mod n).
    fn session(&self, name: &str, index: usize) -> anyhow::Result<Session> {
        let validator = &self.file.validators[index % self.file.validators.len()];
        Session::open(
            NodeClient::new(&validator.api),
            &self.trust,
            self.file.key(name)?,
            WAIT,
        )
    }

    fn say(&mut self, text: &str) {
        self.number += 1;
        if !self.json {
            println!("\n[{}/{STEPS}] {text}", self.number);
        }
    }

    fn done(&mut self, step: &str, outcome: TxOutcome) -> TxOutcome {
        // Each step runs on another validator; one that has not applied this
        // block yet would not know the token the next step names.
        self.wait_all_at(outcome.height);
        if !self.json {
            println!(
                "      committed at height {}, tx {}",
                outcome.height, outcome.tx_hash
            );
        }
        self.steps.push(DemoStep {
            step: step.to_string(),
            outcome: outcome.clone(),
        });
        outcome
    }

    /// Waits (at most `WAIT`) until every validator has committed `height`.
    /// A validator that stays behind is left to the next step's own error.
    fn wait_all_at(&self, height: u64) {
        let deadline = Instant::now() + WAIT;
        for validator in &self.file.validators {
            let client = NodeClient::new(&validator.api);
            while Instant::now() < deadline
                && client
                    .status()
                    .map_or(true, |status| status.height < height)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn note(&self, text: &str) {
        if !self.json {
            println!("      {text}");
        }
    }
}

fn first_token(outcome: &TxOutcome, index: usize) -> anyhow::Result<TokenId> {
    let id = outcome
        .tokens
        .get(index)
        .with_context(|| format!("transaction {} created no token {index}", outcome.tx_hash))?;
    parse::token_id(id)
}

fn lifecycle(dir: &Path, maturity_seconds: u64, json: bool) -> anyhow::Result<()> {
    let file = TestnetFile::load(dir)?;
    let genesis_path = dir.join(crate::setup::GENESIS_FILE);
    let mut demo = Demo {
        file: &file,
        trust: Trust::new(Some(genesis_path.clone()), json),
        json,
        steps: Vec::new(),
        number: 0,
    };
    let bank = demo.session("bank", 0)?;
    let core = demo.session("core", 1)?;
    let supplier1 = demo.session("supplier1", 2)?;
    let supplier2 = demo.session("supplier2", 3)?;
    let currency = bank.chain.currency_code().to_string();
    let key = |session: &Session| session.key.public();
    let stamp = parse::now().0;

    demo.say(&format!(
        "bank grants core a credit line of 5000000.00 {currency}"
    ));
    let outcome = bank.grant_credit(key(&core), "5000000.00")?;
    demo.done("grant credit line", outcome);

    let maturity = Timestamp(parse::now().0 + maturity_seconds * 1000);
    let invoice = format!("DEMO-INV-{stamp}");
    demo.say(&format!(
        "core confirms invoice {invoice}: it owes supplier1 1000000.00 {currency}, due {} (in {maturity_seconds} s)",
        parse::format_time(maturity)
    ));
    let outcome = core.confirm_receivable(key(&supplier1), "1000000.00", maturity, &invoice)?;
    let outcome = demo.done("confirm receivable", outcome);
    let root = first_token(&outcome, 0)?;
    demo.note(&format!("root token {root}"));

    demo.say("supplier1 splits it: pays supplier2 400000.00, keeps 600000.00");
    let outcome = supplier1.transfer(&root, &[(key(&supplier2), "400000.00".to_string())])?;
    let outcome = demo.done("supplier1 pays supplier2", outcome);
    let supplier2_token = first_token(&outcome, 0)?;
    let supplier1_rest = first_token(&outcome, 1)?;

    let supplier3 = demo.session("supplier3", 0)?;
    demo.say("supplier2 pays supplier3 150000.00 of its token, keeps 250000.00");
    let outcome = supplier2.transfer(
        &supplier2_token,
        &[(key(&supplier3), "150000.00".to_string())],
    )?;
    let outcome = demo.done("supplier2 pays supplier3", outcome);
    let supplier3_token = first_token(&outcome, 0)?;

    demo.say("supplier3 asks bank to finance its 150000.00 at 4.35 % a year");
    let outcome = supplier3.request_financing(&supplier3_token, key(&bank), "4.35")?;
    demo.done("supplier3 requests financing", outcome);

    demo.say("bank accepts and buys the token at its discounted price");
    let outcome = bank.accept_financing(&supplier3_token)?;
    let outcome = demo.done("bank accepts financing", outcome);
    let bank_token = bank.token(&first_token(&outcome, 0)?)?;
    if let Origin::Financed { price, days, .. } = bank_token.origin {
        demo.note(&format!(
            "bank paid supplier3 {} {currency} ({days} day(s) of discount); it now holds the 150000.00 claim on core",
            price.to_decimal_string(bank.decimals())
        ));
    }

    demo.say("the maturity passes; a matured token can no longer move");
    let wait = Duration::from_millis(maturity.0.saturating_sub(parse::now().0) + 1_000);
    demo.note(&format!("waiting {} s for the maturity", wait.as_secs()));
    std::thread::sleep(wait);
    match supplier1.transfer(&supplier1_rest, &[(key(&supplier2), "1.00".to_string())]) {
        Err(error) => {
            let code = error
                .downcast_ref::<CliError>()
                .and_then(|e| e.code.clone());
            if code.as_deref() != Some("matured") {
                return Err(error.context("expected the ledger to refuse a matured token"));
            }
            demo.note(&format!(
                "supplier1 tries to pay supplier2 again: refused: {error}"
            ));
        }
        Ok(outcome) => bail!(
            "the ledger accepted a transfer of a matured token (tx {})",
            outcome.tx_hash
        ),
    }

    demo.say("core settles the receivable: every current holder is paid");
    let outcome = core.settle(&root, &format!("DEMO-PAY-{stamp}"))?;
    demo.done("core settles", outcome);

    demo.say("auditor verifies the chain: certificates, signatures, and every app hash by replay");
    let auditor_node = &file.validators[file.validators.len() - 1].api;
    let mut node_source = audit::NodeSource::new(auditor_node);
    let mut source = audit::TrustedSource::new(
        &mut node_source,
        audit::TrustedGenesis::File {
            genesis: bank.chain.genesis.clone(),
            path: genesis_path,
        },
    );
    let report = audit::verify_chain(&mut source, &mut audit::NoProgress)
        .map_err(|failure| anyhow::anyhow!("the audit failed: {failure}"))?;
    demo.note(&format!(
        "verified heights 1..{} ({} transactions) from {auditor_node}; app hash {}",
        report.heights, report.transactions, report.app_hash
    ));

    let tree = trace::trace(&bank.client, &root, bank.decimals())?;
    if json {
        let report = DemoReport {
            chain_id: file.chain_id.clone(),
            root: root.to_string(),
            steps: demo.steps,
            trace: tree,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("plain data serialises")
        );
    } else {
        println!("\nthe receivable's lineage:\n");
        print!("{}", trace::render(&tree, &currency));
        println!("\ndemo finished: every step committed on all validators");
    }
    Ok(())
}
