//! Storage adapters. DynamoDB is the only real one: everything that knows its expressions
//! lives in [`dynamodb`], its key formats in [`keys`], and what `admin` writes in [`seed`].
//! `memory` is an in-memory `Store` for the use case's unit tests.

pub mod dynamodb;
pub mod keys;
#[cfg(test)]
pub mod memory;
pub mod seed;
