//! Print what NVML reports about every GPU, as the JSON the `nvml` source's
//! recorded-reading tests play back:
//!
//!     cargo run -p scalewise-providers --example gpu_readings > readings.json
//!
//! Without a driver it prints the reason to stderr and exits with 1.

use scalewise_providers::sources::nvml::{NvmlProbe, Probe};

fn main() -> std::process::ExitCode {
    match NvmlProbe::new().read() {
        Ok(gpus) => {
            println!("{}", serde_json::to_string_pretty(&gpus).expect("readings serialize"));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
