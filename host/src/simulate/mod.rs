//! `scalewise simulate`: replay load traces through the control loop.
pub mod elasticity;
pub mod oracle;
pub mod series;
pub mod trace;
pub mod fleet;
pub mod run;
pub mod source;
pub mod spec;
pub mod report;
