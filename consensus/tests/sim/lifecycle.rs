//! How validators stop, come back and catch up: booting (or rebooting)
//! from what survives a crash (the safety record and committed blocks),
//! planned and random crashes, the block sync stand-in that commits
//! blocks with their certificates from a peer, and starting each height
//! with its set (and, after a key rotation, the new key). It does not decide when
//! sync requests are sent; `mod.rs` schedules them.

use consensus::{CommitCertificate, Decision, Engine, EngineConfig, Height, Input, Output};
use crypto::Hash;

use super::{Event, Sim};

impl Sim<'_> {
    /// Starts (or restarts) a validator from what it persisted.
    pub(super) fn boot(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if n.engine.is_some() {
            return;
        }
        let config = self.engine_config();
        let n = &mut self.nodes[node];
        let record = if n.behaviour.is_none() {
            n.record
        } else {
            None
        };
        n.engine = Some(Engine::validator(self.chain, config, n.key.clone(), record));
        n.incarnation += 1;
        let incarnation = n.incarnation;
        let next = n.blocks.keys().next_back().map_or(Height(1), |h| h.next());
        self.at(
            self.now + self.scenario.sync_interval_ms,
            Event::SyncTick { node, incarnation },
        );
        if next.0 <= self.scenario.target_height {
            let outputs = self.start_height(node, next);
            self.apply(node, outputs);
        }
    }

    pub(super) fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            timeouts: self.scenario.timeouts,
            ..EngineConfig::default()
        }
    }

    /// Starts `height` on `node`'s engine with the set in force there. If
    /// the node's key was rotated at this height, it first gets a fresh
    /// engine for the new key, as a node restarted with a new key file
    /// would: the new key has signed nothing, so it starts with no safety
    /// record, and the old key is in no set from here on.
    pub(super) fn start_height(&mut self, node: usize, height: Height) -> Vec<Output> {
        if let Some(membership) = &self.scenario.membership {
            let key = membership.key_of(node, height);
            if key.public() != self.nodes[node].key.public() && self.nodes[node].engine.is_some() {
                let engine = Engine::validator(self.chain, self.engine_config(), key.clone(), None);
                let n = &mut self.nodes[node];
                n.key = key.clone();
                n.record = None;
                n.engine = Some(engine);
                self.report.rotations += 1;
            }
        }
        let validators = self.scenario.validator_set(height);
        match self.nodes[node].engine.as_mut() {
            Some(engine) => engine.handle(Input::StartHeight { height, validators }),
            None => Vec::new(),
        }
    }

    pub(super) fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.engine = None;
        n.incarnation += 1;
        n.history.clear();
    }

    pub(super) fn maybe_crash_now(&mut self, node: usize) -> bool {
        let Some(plan) = self.scenario.random_restarts.clone() else {
            return false;
        };
        if plan.node != node
            || self.report.restarts >= plan.max_restarts
            || !self.rng.chance(plan.per_mille_per_output)
        {
            return false;
        }
        self.report.restarts += 1;
        self.crash(node);
        let down = self.rng.between(plan.min_down_ms, plan.max_down_ms);
        self.at(self.now + down, Event::Boot { node });
        true
    }

    /// Blocks with certificates from a peer (block sync): commit those that
    /// continue our chain, then move the engine on.
    pub(super) fn synced(&mut self, node: usize, blocks: Vec<(Height, Hash, CommitCertificate)>) {
        for (height, value, certificate) in blocks {
            let Some(current) = self.nodes[node].engine.as_ref().and_then(Engine::height) else {
                return;
            };
            if height != current || self.nodes[node].blocks.contains_key(&height) {
                continue;
            }
            let decision = Decision {
                height,
                round: certificate.round,
                value,
                certificate,
            };
            if let Some(next) = self.decided(node, decision, true) {
                let outputs = self.start_height(node, next);
                self.apply(node, outputs);
            }
        }
    }
}
