//! One file per screen: its state, what its keys do (`impl App` blocks) and its drawing.

pub mod batch;
pub mod catalog;
pub mod health;
pub mod live;
pub mod speech;
pub mod synthesize;
pub mod voices;
