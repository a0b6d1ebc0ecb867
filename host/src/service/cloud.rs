//! The providers outside this process (`aws-ec2`, `azure-vmss`, `docker`,
//! `gce`, `kubernetes`) and leader election, each behind its cargo feature.
//!
//! Why features: the AWS SDK and the Kubernetes client are most of a
//! release build's time (and size), and neither the demo nor a host that
//! drives local workers uses them. `make run` builds without them; CI, the
//! container image and `--features cloud` build with them. A config that
//! names a provider this binary lacks is refused before anything starts
//! ([`crate::config::cloud::unbuilt`]); the stubs below are only reached if
//! that check is skipped, and say the same.

use std::sync::Arc;

use scalewise_providers::Target;
use scalewise_providers::leader::Leadership;
use tokio::sync::watch;

use crate::config::{Config, PoolConfig};
use crate::config::cloud::{Ec2Provider, KubernetesProvider};
use crate::config::azure::AzureVmssProvider;
use crate::config::docker::DockerProvider;
use crate::config::gce::GceProvider;

/// A running elector: told to stop (and release the lease) through the sender.
pub type Elector = (watch::Sender<bool>, tokio::task::JoinHandle<()>);

#[cfg(feature = "aws")]
pub async fn ec2_target(p: &PoolConfig, c: &Ec2Provider) -> anyhow::Result<Arc<dyn Target>> {
    use scalewise_providers::targets::aws::retry::Backoff;
    use scalewise_providers::targets::aws::{Ec2Config, Ec2Target, InstanceSpec};
    let config = Ec2Config {
        pool: p.id.clone(),
        region: c.region.clone(),
        endpoint_url: c.endpoint_url.clone(),
        spec: InstanceSpec {
            launch_template_id: c.launch_template_id.clone(),
            launch_template_name: c.launch_template_name.clone(),
            launch_template_version: c.launch_template_version.clone(),
            image_id: c.image_id.clone(),
            instance_type: c.instance_type.clone(),
            subnet_id: c.subnet_id.clone(),
            security_group_ids: c.security_group_ids.clone(),
            key_name: c.key_name.clone(),
        },
        backoff: Backoff { attempts: c.max_attempts, ..Backoff::default() },
        quota_cooldown: std::time::Duration::from_secs(c.quota_cooldown_secs),
        page_size: c.page_size,
    };
    Ok(Arc::new(Ec2Target::connect(config).await.map_err(|e| anyhow::anyhow!("pool `{}`: {e}", p.id))?))
}

#[cfg(not(feature = "aws"))]
pub async fn ec2_target(p: &PoolConfig, _: &Ec2Provider) -> anyhow::Result<Arc<dyn Target>> {
    anyhow::bail!("pool `{}`: this scalewise was built without the `aws` feature (build with `--features aws`)", p.id)
}

#[cfg(feature = "kubernetes")]
pub async fn kubernetes_target(p: &PoolConfig, k: &KubernetesProvider) -> anyhow::Result<Arc<dyn Target>> {
    use scalewise_providers::targets::kubernetes::{self, WorkloadRef, WorkloadTarget};
    let client = kubernetes::client(k.cluster_url.as_deref()).await.map_err(|e| anyhow::anyhow!("pool `{}`: {e}", p.id))?;
    let workload = WorkloadRef {
        api_version: k.api_version.clone(),
        kind: k.workload.clone(),
        plural: k.plural.clone(),
        namespace: k.namespace.clone(),
        name: k.name.clone(),
    };
    Ok(Arc::new(WorkloadTarget::new(client, workload)))
}

#[cfg(not(feature = "kubernetes"))]
pub async fn kubernetes_target(p: &PoolConfig, _: &KubernetesProvider) -> anyhow::Result<Arc<dyn Target>> {
    anyhow::bail!("pool `{}`: this scalewise was built without the `kubernetes` feature (build with `--features kubernetes`)", p.id)
}

#[cfg(feature = "docker")]
pub fn docker_target(p: &PoolConfig, d: &DockerProvider) -> anyhow::Result<Arc<dyn Target>> {
    use std::time::Duration;

    use scalewise_providers::targets::backoff::Backoff;
    use scalewise_providers::targets::docker::{DockerConfig, DockerTarget, Healthcheck, Restart};
    let host = d.engine(std::env::var("DOCKER_HOST").ok()).map_err(|e| anyhow::anyhow!("pool `{}`: {e}", p.id))?;
    let config = DockerConfig {
        pool: p.id.clone(),
        host,
        image: d.image.clone(),
        command: d.command.clone(),
        env: d.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        labels: d.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        network: d.network.clone(),
        memory_mib: d.memory_mib,
        cpus: d.cpus,
        healthcheck: d.healthcheck.as_ref().map(|h| Healthcheck {
            test: h.test.clone(),
            interval: Duration::from_secs_f64(h.interval_secs),
            retries: h.retries,
            start_period: Duration::from_secs_f64(h.start_period_secs),
        }),
        restart: if d.restart == "no" { Restart::No } else { Restart::UnlessStopped },
        name_prefix: d.name_prefix(&p.id),
        grace: Duration::from_secs(d.grace_secs),
        parallel: d.parallel,
        call_timeout: Duration::from_secs(d.call_timeout_secs),
        backoff: Backoff { attempts: d.max_attempts, base: Duration::from_millis(100), cap: Duration::from_secs(2) },
        hold: Duration::from_secs(d.hold_secs),
    };
    Ok(Arc::new(DockerTarget::new(config)))
}

#[cfg(not(feature = "docker"))]
pub fn docker_target(p: &PoolConfig, _: &DockerProvider) -> anyhow::Result<Arc<dyn Target>> {
    anyhow::bail!("pool `{}`: this scalewise was built without the `docker` feature (build with `--features docker`)", p.id)
}

#[cfg(feature = "azure")]
pub fn azure_vmss_target(p: &PoolConfig, a: &AzureVmssProvider) -> anyhow::Result<Arc<dyn Target>> {
    use std::time::Duration;

    use scalewise_providers::targets::azure::arm::Arm;
    use scalewise_providers::targets::azure::identity::{Credential, TokenSource};
    use scalewise_providers::targets::azure::{VmssConfig, VmssTarget};
    use scalewise_providers::targets::backoff::Backoff;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let at = format!("pool `{}`: provider azure-vmss", p.id);
    let tenant = || a.tenant_id.clone().or_else(|| env("AZURE_TENANT_ID")).ok_or_else(|| anyhow::anyhow!("{at}: no tenant: set tenant_id or AZURE_TENANT_ID"));
    let client = || a.client_id.clone().or_else(|| env("AZURE_CLIENT_ID")).ok_or_else(|| anyhow::anyhow!("{at}: no client id: set client_id or AZURE_CLIENT_ID"));
    let secret = || -> anyhow::Result<Option<String>> {
        match &a.client_secret_file {
            Some(f) => Ok(Some(super::read_secret(f).map_err(|e| anyhow::anyhow!("{at}: client_secret_file: {e}"))?)),
            None => Ok(env("AZURE_CLIENT_SECRET")),
        }
    };
    let kind = match a.credential.as_str() {
        "auto" if secret()?.is_some() => "client-secret",
        "auto" if env("AZURE_FEDERATED_TOKEN_FILE").is_some() => "workload-identity",
        "auto" => "managed-identity",
        k => k,
    };
    let credential = match kind {
        "client-secret" => Credential::ClientSecret {
            tenant_id: tenant()?,
            client_id: client()?,
            secret: secret()?.ok_or_else(|| anyhow::anyhow!("{at}: no client secret: set client_secret_file or AZURE_CLIENT_SECRET"))?,
        },
        "workload-identity" => Credential::WorkloadIdentity {
            tenant_id: tenant()?,
            client_id: client()?,
            token_file: env("AZURE_FEDERATED_TOKEN_FILE").ok_or_else(|| anyhow::anyhow!("{at}: workload identity needs AZURE_FEDERATED_TOKEN_FILE (set by the AKS workload identity webhook)"))?.into(),
        },
        _ => Credential::ManagedIdentity { client_id: a.client_id.clone().or_else(|| env("AZURE_CLIENT_ID")) },
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(a.request_timeout_secs))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let authority = a.authority_host.clone().or_else(|| env("AZURE_AUTHORITY_HOST")).unwrap_or_else(|| "https://login.microsoftonline.com".into());
    let tokens = TokenSource::new(credential, authority, a.imds_endpoint.clone(), a.audience(), http.clone());
    let arm = Arm {
        http,
        endpoint: a.endpoint.clone(),
        api_version: a.api_version.clone(),
        tokens,
        backoff: Backoff { attempts: a.max_attempts, ..Backoff::default() },
        operation_timeout: Duration::from_secs(a.operation_timeout_secs),
    };
    let config = VmssConfig {
        pool: p.id.clone(),
        subscription_id: a.subscription_id.clone(),
        resource_group: a.resource_group.clone(),
        name: a.name.clone(),
        max_pages: 100,
        quota_cooldown: Duration::from_secs(a.quota_cooldown_secs),
    };
    Ok(Arc::new(VmssTarget::new(arm, config)))
}

#[cfg(not(feature = "azure"))]
pub fn azure_vmss_target(p: &PoolConfig, _: &AzureVmssProvider) -> anyhow::Result<Arc<dyn Target>> {
    anyhow::bail!("pool `{}`: this scalewise was built without the `azure` feature (build with `--features azure`)", p.id)
}

#[cfg(feature = "gce")]
pub async fn gce_target(p: &PoolConfig, g: &GceProvider) -> anyhow::Result<Arc<dyn Target>> {
    use std::time::Duration;

    use scalewise_providers::targets::backoff::Backoff;
    use scalewise_providers::targets::gce::{GceConfig, GceTarget, Location};
    let location = match (&g.zone, &g.region) {
        (Some(z), _) => Location::Zone(z.clone()),
        (None, Some(r)) => Location::Region(r.clone()),
        (None, None) => anyhow::bail!("pool `{}`: provider gce: give `zone` or `region`", p.id),
    };
    let config = GceConfig {
        pool: p.id.clone(),
        project: g.project.clone(),
        location,
        name: g.name.clone(),
        endpoint: g.endpoint.clone(),
        backoff: Backoff { attempts: g.max_attempts, ..Backoff::default() },
        request_timeout: Duration::from_secs(g.request_timeout_secs),
        operation_timeout: Duration::from_secs(g.operation_timeout_secs),
        page_size: g.page_size,
        quota_cooldown: Duration::from_secs(g.quota_cooldown_secs),
    };
    Ok(Arc::new(GceTarget::connect(config).await.map_err(|e| anyhow::anyhow!("{e}"))?))
}

#[cfg(not(feature = "gce"))]
pub async fn gce_target(p: &PoolConfig, _: &GceProvider) -> anyhow::Result<Arc<dyn Target>> {
    anyhow::bail!("pool `{}`: this scalewise was built without the `gce` feature (build with `--features gce`)", p.id)
}

/// Join the leader election, if the config asks for it, and start the elector.
#[cfg(feature = "kubernetes")]
pub async fn elect(config: &Config) -> anyhow::Result<Option<(Leadership, Elector)>> {
    use std::time::Duration;

    use scalewise_providers::leader::LeaseCheck;
    use scalewise_providers::leader::lease::{LeaseConfig, LeaseElector};
    use scalewise_providers::targets::kubernetes;
    let Some(le) = &config.leader_election else { return Ok(None) };
    let client = kubernetes::client(le.cluster_url.as_deref()).await.map_err(|e| anyhow::anyhow!("leader_election: {e}"))?;
    let identity = le.identity();
    let leadership = Leadership::new(identity.clone());
    let elector = Arc::new(LeaseElector::new(
        client,
        LeaseConfig {
            namespace: le.namespace.clone(),
            name: le.lease_name.clone(),
            identity,
            lease_duration: Duration::from_secs_f64(le.lease_duration_secs),
            renew_deadline: Duration::from_secs_f64(le.renew_deadline_secs),
            retry_period: Duration::from_secs_f64(le.retry_period_secs),
        },
        leadership.clone(),
    ));
    let check: Arc<dyn LeaseCheck> = elector.clone();
    leadership.confirm_with(Arc::downgrade(&check));
    let (stop, stopped) = watch::channel(false);
    Ok(Some((leadership, (stop, tokio::spawn(elector.run(stopped))))))
}

#[cfg(not(feature = "kubernetes"))]
pub async fn elect(config: &Config) -> anyhow::Result<Option<(Leadership, Elector)>> {
    match &config.leader_election {
        None => Ok(None),
        Some(_) => anyhow::bail!("leader_election: this scalewise was built without the `kubernetes` feature (build with `--features kubernetes`)"),
    }
}
