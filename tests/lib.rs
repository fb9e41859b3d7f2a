//! Home of the multi-node and end-to-end tests (under `tests/`), which start
//! real nodes and the real `scf` binary. The library itself is empty: it only
//! gives those tests a package to live in.
