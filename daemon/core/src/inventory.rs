//! Drive inventory: filled in by the discovery work.
