//! The mlc compiler: lowering from the language to Graph IR, passes, packaging.

pub mod driver;
pub mod example;
pub mod lower;
