//! Stage 4: running the command in each account.

pub mod child;
pub mod env;
