//! Everything fanout prints goes through here: child lines through the writer thread,
//! tables, the summary and errors. Other modules return text; they never print.

pub mod dir;
pub mod group;
pub mod json;
pub mod lines;
pub mod progress;
pub mod report;
pub mod sink;
pub mod writer;
