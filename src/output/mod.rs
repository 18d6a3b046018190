//! Everything fanout prints goes through here: child lines through the writer thread,
//! tables, the summary and errors. Other modules return text; they never print.

pub mod json;
pub mod lines;
pub mod progress;
pub mod report;
pub mod writer;
