//! Shared by the tar tests: raw tar builders for the odd headers ([`build`]), the
//! valid odd archives every reader must agree on ([`cases`]), and a snapshot of
//! an unpacked tree to compare Cove against GNU tar ([`snapshot`]).
#![allow(dead_code)]

pub mod build;
pub mod cases;
pub mod snapshot;
