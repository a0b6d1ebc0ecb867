//! Targets that add or remove capacity, and sources of metrics.
//!
//! This crate knows nothing of policies or of the journal: the host drives it
//! through the small interfaces defined here. The adapters (local process
//! pool, AWS EC2, Kubernetes, Prometheus, NVML, /proc, replay) arrive with the
//! control loop.
