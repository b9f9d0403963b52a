// Gate 3's public shapes live in core/ (the snapshot and the judge need them without loading
// the Wasm engine); re-exported here for the engine's own modules.
export * from '../../core/policy-engine.js';
