//! `scalewise serve`: the long-running host.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::api;
use crate::journal::Journal;
use crate::service::Service;
use crate::service::reload::{Overrides, Reloader};
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::policy::cache::ArtifactCache;
use crate::policy::watch::Watcher;
use crate::policy::{Compiler, PolicyEngine, Registry, SandboxOptions};

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let unbuilt = crate::config::cloud::unbuilt(&config);
    if !unbuilt.is_empty() {
        let file = args.config.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
        anyhow::bail!("{file}: {}", unbuilt.join("\n  "));
    }
    let (policy_dir_flag, listen_flag) = (args.policy_dir.clone(), args.listen);
    if let Some(dir) = &policy_dir_flag {
        config.policies.dir = dir.clone();
    }
    if let Some(listen) = listen_flag {
        config.server.listen = listen;
    }
    let dir = &config.policies.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating the policy directory {}", dir.display()))?;
    let cache = match &config.policies.cache_dir {
        Some(d) => Some(ArtifactCache::new(d).with_context(|| format!("creating the compile cache {}", d.display()))?),
        None => None,
    };
    let engine = Arc::new(PolicyEngine::new(config.sandbox_options(), cache)?);
    // New versions serve from a quick Winch build while Cranelift compiles.
    let baseline = Arc::new(PolicyEngine::new(SandboxOptions { compiler: Compiler::Winch, ..config.sandbox_options() }, None)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // Remote policies before the first scan: pinned ones are usually in the
    // cache already, so a registry that is down does not keep the host from
    // starting; one that cannot be had is reported and its pools decide
    // without it until a reload fetches it.
    let (fetched, failures) = runtime.block_on(crate::policy::remote::fetch_all(config.remote_sources(), &config.fetching()));

    let registry = Arc::new(
        Registry::new(engine, dir.clone(), config.policy_settings())
            .with_remote(fetched.into_iter().map(|(id, f)| (id, f.path)).collect())
            .with_instances(config.policy_instances())
            .with_users(config.policy_users())
            .with_file_limits(config.file_limits())
            .with_version_ledger(&config.policies.versions_file)
            .with_baseline(baseline),
    );
    for (id, why) in &failures {
        registry.record_load_error(id, format!("not fetched: {why}"));
    }
    registry.start_tiering();
    let mut report = registry.rescan();
    if let Some(wait) = report.recheck_in {
        // Files written just before the start settle once; any still being
        // written are left to the watcher, so the start is not held up.
        std::thread::sleep(wait);
        let again = registry.rescan();
        report.loaded.extend(again.loaded);
        report.failed.extend(again.failed);
        report.pending = again.pending;
    }
    tracing::info!(dir = %dir.display(), loaded = report.loaded.len(), failed = report.failed.len(), pending = report.pending.len(), "policy directory scanned");
    let _watcher = Watcher::start(registry.clone()).context("watching the policy directory")?;

    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding {}", config.server.listen))?;
        // A host with a config file keeps a journal even with no pools yet:
        // a reload may add one.
        let journal = if config.pools.is_empty() && args.config.is_none() { None } else { Some(Journal::open_retaining(&config.journal.path, config.journal.retention())?) };
        let service = Service::start(&config, registry.clone(), journal.clone()).await?;
        let live = service.live.clone();
        let demo = match &config.demo {
            Some(d) => {
                let queue = Arc::new(crate::demo::Queue::default());
                crate::demo::start(d.clone(), queue.clone(), live.load().pools[&d.pool].push.clone());
                tracing::info!(pool = %d.pool, "demo load generator started");
                Some(queue)
            }
            None => None,
        };
        let leadership = service.leadership.clone();
        // With a config file, one task owns the service and reloads it on
        // SIGHUP, on `POST /config/reload` and when the file changes.
        let (stop_reloads, stopped) = tokio::sync::watch::channel(false);
        let (reloads, owner) = match args.config.clone() {
            Some(path) => {
                let (policy_dir, listen) = (policy_dir_flag.clone(), listen_flag);
                let overrides: Overrides = Box::new(move |c| {
                    if let Some(d) = &policy_dir {
                        c.policies.dir = d.clone();
                    }
                    if let Some(l) = listen {
                        c.server.listen = l;
                    }
                });
                let (reloader, handle) = Reloader::new(path.clone(), service, registry.clone(), overrides);
                let owner = tokio::spawn(reloader.run(stopped));
                crate::service::config_watch::start(path, handle.clone());
                (Some(handle), Owner::Reloader(owner))
            }
            None => (None, Owner::Direct(Box::new(service))),
        };
        tracing::info!(addr = %listener.local_addr()?, "scalewise API listening; dashboard at http://{}/", listener.local_addr()?);
        let app = api::router(api::AppState {
            registry,
            evaluations: Arc::new(tokio::sync::Semaphore::new(config.server.evaluate_concurrency)),
            server: Arc::new(config.server.clone()),
            live, journal, demo, leadership, reload: reloads });
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
        tracing::info!("shutting down: finishing in-flight decisions");
        let service = match owner {
            Owner::Direct(s) => *s,
            Owner::Reloader(task) => {
                let _ = stop_reloads.send(true);
                task.await.context("the reload task")?
            }
        };
        service.stop().await;
        anyhow::Ok(())
    })?;
    tracing::info!("scalewise stopped");
    Ok(ExitCode::SUCCESS)
}

/// Who holds the service while the host runs.
enum Owner {
    Direct(Box<Service>),
    Reloader(tokio::task::JoinHandle<Service>),
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
