use scalewise_sdk::prelude::*;

#[derive(Deserialize)]
pub struct Settings {
    target_per_worker: f64,
}

pub struct RequestsPerWorker;

impl Strategy for RequestsPerWorker {
    type Settings = Settings;
    type State = ();

    fn evaluate(input: &StrategyInput, s: &Settings, _: &mut ()) -> Result<Proposal, String> {
        let rps = input.metric("rps").and_then(|m| m.mean_since(input.now, 60_000)).ok_or("no rps samples")?;
        let desired = input.pool.clamp((rps / s.target_per_worker).ceil());
        Ok(Proposal::new(desired, 0.9, format!("{rps:.0} rps / {} per worker", s.target_per_worker)))
    }
}

export_strategy!(RequestsPerWorker);
