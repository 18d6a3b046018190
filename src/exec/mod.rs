//! Stage 4: running the command in each account.

pub mod child;
pub mod env;
pub mod interpreters;
pub mod shell;
pub mod template;
