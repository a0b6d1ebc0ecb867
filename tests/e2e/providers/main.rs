//! The host driving infrastructure outside itself: containers on a real
//! Docker engine that the tests start (`support/docker.rs`); an Azure scale
//! set through a stand-in for ARM and Entra ID (`support/arm_standin.rs`);
//! a Compute Engine managed instance group through Google's own client and
//! a stand-in for the Compute API (`support/gce_standin.rs`);
//! EC2 through the moto server (a real implementation of the EC2 API, run
//! on loopback), and
//! Kubernetes through a stand-in API server that speaks the real JSON (no
//! real API server can run here; see `support/kube_standin.rs`); and the
//! shipped deployment manifests read into the Kubernetes API types.

mod azure;
mod docker;
mod ec2;
mod gce;
mod kubernetes;
mod manifests;
