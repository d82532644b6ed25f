//! Integration tests of lethe-audit through its public API only.

mod doc_vectors;
mod merkle_vectors;
mod writer;
