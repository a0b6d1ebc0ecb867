//! Pool configuration: every problem is reported, each with its field path.

use crate::config::*;

const GOOD: &str = r#"
[sources.prom]
kind = "prometheus"
url = "http://127.0.0.1:9090"

[[pools]]
id = "web"
min = 1
max = 10
strategies = [{ policy = "queue-depth" }]
provider = { kind = "local", command = ["sleep", "100"] }
metrics = [{ name = "queue_depth", source = "push" }, { name = "rps", source = "prom", query = "sum(rate(x[1m]))" }]
guardrails = { tolerance = 0.2, scale_up_limits = [{ type = "members", value = 2, period_secs = 10 }] }
"#;

#[test]
fn a_good_pool_parses() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.pools[0].guardrails.tolerance, 0.2);
    assert_eq!(c.pools[0].guardrails.scale_down_stabilization_secs, 300, "unset guardrails keep their defaults");
}

#[test]
fn type_errors_name_the_path_and_line() {
    let err = Config::parse(&GOOD.replace("min = 1", "min = -1")).unwrap_err();
    assert!(err.starts_with("pools[0].min:") && err.contains("line 8"), "{err}");
    let err = Config::parse(&GOOD.replace("\"members\"", "\"pods\"")).unwrap_err();
    assert!(err.starts_with("pools[0].guardrails.scale_up_limits[0].type:"), "{err}");
    let err = Config::parse(&GOOD.replace("kind = \"local\"", "kind = \"cloud\"")).unwrap_err();
    assert!(err.starts_with("pools[0].provider"), "{err}");
    let err = Config::parse(&GOOD.replace("max = 10", "max = 10\ncolour = \"red\"")).unwrap_err();
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn every_semantic_problem_is_listed() {
    let bad = GOOD
        .replace("min = 1", "min = 20")
        .replace("source = \"push\"", "source = \"nowhere\"")
        .replace("tolerance = 0.2", "tolerance = 2.0")
        .replace("http://127", "ftp://127")
        .replace(":9090\"", ":9090\"\nmax_answer_bytes = 10")
        .replace("strategies = [{ policy = \"queue-depth\" }]", "strategies = [{ policy = \"a\" }, { policy = \"b\", weight = -1 }]");
    let err = Config::parse(&bad).unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    for want in [
        "sources.prom.url:",
        "sources.prom.max_answer_bytes: 10 cannot hold an answer",
        "pools[0].min: 20 is above max 10",
        "pools[0].consensus:",
        "pools[0].strategies[1].weight:",
        "pools[0].metrics[0].source: no source `nowhere`",
        "pools[0].guardrails.tolerance:",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(want)), "missing `{want}` in:\n{err}");
    }
}

#[test]
fn duplicate_pool_ids_are_refused() {
    let pool = GOOD.split("[[pools]]").nth(1).unwrap();
    let err = Config::parse(&format!("{GOOD}\n[[pools]]{pool}")).unwrap_err();
    assert!(err.contains("pools[1].id: `web` is used by another pool"), "{err}");
}

#[test]
fn budget_and_limit_problems_name_their_fields() {
    let bad = GOOD.replace(
        "guardrails = {",
        "limits = [{ metric = \"gpu_free\", per_member = 0 }]\ncost = { budget = 10, budget_period = \"week\", budget_alerts = [50, -1] }\nguardrails = {",
    )
    .replace("command = [\"sleep\", \"100\"]", "command = [\"sleep\", \"100\"], member_memory_mib = 0");
    let err = Config::parse(&bad).unwrap_err();
    for needle in [
        "pools[0].provider.member_memory_mib: must be at least 1",
        "pools[0].cost.budget_period: `week` is not a period",
        "pools[0].cost.budget_alerts: each alert is a percentage",
        "pools[0].limits[0].per_member: must be a number > 0",
        "pools[0].limits[0].metric: the pool collects no metric `gpu_free`",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    let both = GOOD.replace("guardrails = {", "cost = { budget = 10, budget_period = \"month\", budget_period_hours = 24 }\nguardrails = {");
    assert!(Config::parse(&both).unwrap_err().contains("a monthly budget has no length in hours"));
}

#[test]
fn cloud_providers_and_leader_election_parse_and_are_checked() {
    let ec2 = GOOD.replace(
        r#"provider = { kind = "local", command = ["sleep", "100"] }"#,
        r#"provider = { kind = "aws-ec2", region = "eu-west-1", image_id = "ami-1", instance_type = "m7i.large" }"#,
    );
    let c = Config::parse(&ec2).unwrap();
    let ProviderConfig::AwsEc2(p) = &c.pools[0].provider else { panic!("{:?}", c.pools[0].provider) };
    assert_eq!((p.max_attempts, p.quota_cooldown_secs, p.page_size), (6, 300, 100), "defaults");
    let err = Config::parse(&ec2.replace(r#"image_id = "ami-1", "#, "").replace("instance_type", "instanc_type")).unwrap_err();
    assert!(err.contains("instanc_type"), "an unknown field inside the provider: {err}");
    let err = Config::parse(&ec2.replace(r#"image_id = "ami-1", instance_type = "m7i.large""#, r#"endpoint_url = "localhost:5000", page_size = 2"#)).unwrap_err();
    for want in ["provider: give a launch template", "provider.instance_type", "provider.endpoint_url", "provider.page_size"] {
        assert!(err.contains(&format!("pools[0].{want}")), "missing `{want}` in:\n{err}");
    }

    let kube = GOOD.replace(r#"provider = { kind = "local", command = ["sleep", "100"] }"#, r#"provider = { kind = "kubernetes", name = "web" }"#);
    let c = Config::parse(&format!("[leader_election]\nidentity = \"a\"\n{kube}")).unwrap();
    let ProviderConfig::Kubernetes(k) = &c.pools[0].provider else { panic!() };
    assert_eq!((k.api_version.as_str(), k.workload.as_str(), k.namespace.as_str()), ("apps/v1", "Deployment", "default"));
    assert_eq!(c.leader_election.unwrap().identity(), "a");
    let err = Config::parse(&format!("[leader_election]\nlease_duration_secs = 10\nrenew_deadline_secs = 9\nretry_period_secs = 2\n{kube}")).unwrap_err();
    assert!(err.contains("leader_election.retry_period_secs: must be > 0 and at most lease_duration_secs - renew_deadline_secs (1)"), "{err}");
    let err = Config::parse(&format!("[leader_election]\nlease_duration_secs = 2.5\n{kube}")).unwrap_err();
    assert!(err.contains("leader_election.lease_duration_secs: must be a whole number"), "{err}");
}
