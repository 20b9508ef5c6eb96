//! One file per command: each takes the invocation's [`Context`](crate::context::Context) and its parsed
//! arguments, lays its flags over the settings and calls core.

pub mod batch;
pub mod bench;
pub mod catalog;
pub mod clone;
pub mod config;
pub mod convert;
pub mod health;
pub mod models;
pub mod phonemize;
pub mod preprocess;
pub mod remote;
pub mod setup;
pub mod similarity;
pub mod speak;
pub mod voices;
