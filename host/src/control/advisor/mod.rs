//! The advisor: a language model among a pool's experts, asked off the tick
//! path.
//!
//! Why it is shaped like this. A model behind an HTTP endpoint answers in
//! seconds, sometimes not at all, costs money per call, and says what it
//! likes. None of that may reach the control loop. So:
//!
//! - **A tick never waits for it.** A question is sent on a task of its own
//!   ([`Advisor::after_decision`] locks, counts, writes the prompt from the
//!   record, some tens of microseconds, and spawns the call); the answer
//!   lands in shared state, and a later tick reads the freshest one
//!   ([`Advisor::ballot`]). An answer older than `fresh_secs`, a question
//!   still in flight, or one that failed is an abstention that says which.
//! - **It is asked rarely, and by rule**: every N ticks, when the
//!   strategies disagree beyond a spread, or before a change larger than
//!   `review_above`. At most one vote and one review are in flight, and at
//!   most `max_calls_per_hour` calls are made in any hour; past the cap
//!   questions are skipped and counted (votes stop at three quarters of it
//!   when the advisor also reviews, so reviews keep a quarter), and a 429's
//!   `Retry-After` is waited out. A replica on standby asks nothing: the
//!   leader does.
//! - **Its answer is read strictly** ([`answer`]) and guarded like a
//!   strategy's output; its vote is then weighed by the consensus, the cost
//!   rules and the guardrails like any other. As a reviewer it can only
//!   agree or object, and an objection turns the change into one that waits
//!   for an operator's approval: it can stop a change, never make one.
//! - **Everything it is told and says is kept**: the questions in the record
//!   of the tick that asked, the answers (raw, cut to `journal_bytes`) in
//!   the record of the first tick after they came, the counts in the pool's
//!   snapshot and `/metrics`.
//!
//! The prompt is the decision's own record, quoted as data ([`prompt`]).

pub mod answer;
pub mod prompt;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use scalewise_providers::advisors::{ChatClient, ChatError, ChatReply, ChatRequest};
use scalewise_sdk::{Action, Pool};
use serde::Serialize;

use self::answer::{Answer, Question};
use self::prompt::{MetricSummary, Prompts};
use super::clock::Clock;
use crate::decide::record::{AdvisorBallot, AskedRecord, DecisionRecord, HeardRecord, Mode, ReviewRecord};
use crate::policy::guard::OutputLimits;

/// Answers heard between two decisions that their record keeps; more are
/// counted, not kept (a decision every few seconds hears one or two).
const MAX_HEARD: usize = 8;
/// Why an answer counts for nothing is cut to this many bytes: it stands in
/// every decision's record until the next good answer.
const MAX_WHY: usize = 512;
const HOUR_MS: i64 = 3_600_000;
/// The grain of the calls the pool's memory keeps.
const CALL_BUCKET_MS: i64 = 300_000;

/// How a pool's advisor is asked, built from its config.
pub struct AdvisorSpec {
    pub client: Arc<ChatClient>,
    pub vote: bool,
    pub weight: f64,
    pub review_above: Option<u32>,
    pub ask_every_ticks: u32,
    pub ask_on_spread: Option<f64>,
    pub fresh_ms: i64,
    pub max_calls_per_hour: u32,
    pub cost_per_1k_tokens: Option<f64>,
    pub journal_bytes: usize,
    pub timeout_ms: u64,
    pub prompts: Prompts,
    pub limits: OutputLimits,
}

/// What a large change may do, after the advisor's review.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Go ahead (agreed, not large, or no review to be had).
    Proceed,
    /// Wait for the review: asked, and answered or failed within the
    /// call's timeout (a new change asks again).
    Hold(String),
    /// The advisor objects: an operator must approve.
    Object(String),
}

/// What a tick knows besides its record, for the prompt.
pub struct Facts<'a> {
    /// The pool's bounds.
    pub min: u32,
    pub max: u32,
    pub interval_ms: u64,
    pub metrics: &'a [MetricSummary],
    pub recent: &'a [Action],
}

/// A pool's advisor: its settings and what it has heard.
pub struct Advisor {
    spec: Arc<AdvisorSpec>,
    shared: Arc<Mutex<Shared>>,
    ticks: u64,
}

#[derive(Default)]
struct Shared {
    vote: Slot,
    review: Slot,
    /// When each call of the last hour was made.
    calls: VecDeque<i64>,
    /// Answers not yet in a decision's record.
    heard: VecDeque<HeardRecord>,
    /// No call before this: the endpoint's `Retry-After` (at most an hour).
    not_before: Option<i64>,
    stats: Stats,
}

/// One kind of question: what is in flight, the last answer, the last failure.
#[derive(Default)]
struct Slot {
    asked: Option<(Question, i64)>,
    answer: Option<Heard>,
    failure: Option<Failure>,
}

struct Heard {
    q: Question,
    at: i64,
    answer: Answer,
}

struct Failure {
    q: Question,
    at: i64,
    why: String,
}

#[derive(Default, Clone)]
struct Stats {
    calls: BTreeMap<&'static str, u64>,
    failures: BTreeMap<&'static str, u64>,
    skipped_cap: u64,
    dropped_heard: u64,
    latency_ms_sum: u64,
    last_latency_ms: Option<u64>,
    prompt_tokens: u64,
    completion_tokens: u64,
    last_answer_at: Option<i64>,
    last_problem: Option<String>,
}

/// What the API, the dashboard and `/metrics` show of a pool's advisor.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct AdvisorStatus {
    pub endpoint: String,
    pub model: String,
    pub votes: bool,
    pub review_above: Option<u32>,
    /// Calls made in the last hour, and the cap.
    pub calls_last_hour: u32,
    pub max_calls_per_hour: u32,
    /// Calls by outcome: `answered`, `refused` (the answer broke the
    /// schema, its role or the bounds), `failed` (no answer).
    pub calls: BTreeMap<String, u64>,
    /// Failed and refused calls by cause (`timeout`, `rate_limited`,
    /// `http_error`, `unreachable`, `too_large`, `not_a_completion`,
    /// `refused`, `bad_answer`).
    pub failures: BTreeMap<String, u64>,
    /// Questions not asked because the hourly cap was reached.
    pub skipped_at_cap: u64,
    /// Answers that came while no decision was made to keep them (more
    /// than 8 between two decisions): counted, not journalled.
    pub answers_not_journalled: u64,
    pub latency_ms_sum: u64,
    pub last_latency_ms: Option<u64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Tokens times `cost_per_1k_tokens`, where it is set.
    pub spend: Option<f64>,
    pub in_flight: u32,
    /// No call before this (ms): the endpoint's `Retry-After`.
    pub retry_after_until: Option<i64>,
    pub last_answer_at: Option<i64>,
    pub last_problem: Option<String>,
}

/// Where a review of a change stands.
#[derive(Debug, Clone, PartialEq)]
enum ReviewState {
    Agree(String),
    Object(String),
    /// Its question failed or its answer was refused.
    Failed(String),
    /// Asked; `asked_at`.
    Waiting(i64),
    NotAsked,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `text` in at most `max` characters, with an ellipsis where cut: for a
/// reason or an error shown to a person or a model.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// `text` cut to `max` bytes on a character boundary, marked when cut
/// with its whole length: for what the journal keeps of a prompt or an
/// answer, whose budget is in bytes.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes in all]", &text[..end], text.len())
}

impl Advisor {
    pub fn new(spec: AdvisorSpec) -> Self {
        Self { spec: Arc::new(spec), shared: Arc::default(), ticks: 0 }
    }

    /// The calls of the last hour by five-minute bucket, oldest first:
    /// what the pool's memory keeps, so that a restart of the host keeps
    /// the hourly cap (see [`Advisor::restore_calls`]).
    pub fn calls_by_bucket(&self, now: i64) -> Vec<(i64, u32)> {
        let mut out: Vec<(i64, u32)> = Vec::new();
        for at in lock(&self.shared).calls.iter().filter(|at| now - **at < HOUR_MS) {
            let bucket = at - at.rem_euclid(CALL_BUCKET_MS);
            match out.last_mut() {
                Some((b, n)) if *b == bucket => *n += 1,
                _ => out.push((bucket, 1)),
            }
        }
        out
    }

    /// Count the calls a previous run made, from the pool's memory, if this
    /// advisor has made none yet. Each is taken as made at its bucket's
    /// end, so a restored cap lasts up to five minutes longer, never less.
    pub fn restore_calls(&mut self, buckets: &[(i64, u32)], now: i64) {
        let mut sh = lock(&self.shared);
        if !sh.calls.is_empty() {
            return;
        }
        for &(bucket, n) in buckets {
            let at = (bucket + CALL_BUCKET_MS - 1).min(now);
            if now - at < HOUR_MS {
                sh.calls.extend(std::iter::repeat_n(at, n.min(self.spec.max_calls_per_hour) as usize));
            }
        }
        while sh.calls.len() > self.spec.max_calls_per_hour as usize {
            sh.calls.pop_front();
        }
    }

    /// This advisor, sharing its counts, answers and calls in flight: what
    /// a pool retired for a restart hands to the pool that replaces it.
    pub fn share(&self) -> Advisor {
        Advisor { spec: self.spec.clone(), shared: self.shared.clone(), ticks: self.ticks }
    }

    /// Keep what `old` counted across a config reload (a reload must not
    /// reset the hourly cap), and what it heard while the endpoint and the
    /// model stay the same (another model's answers are not this one's).
    pub fn adopt(&mut self, old: &Advisor) {
        self.ticks = old.ticks;
        let same = old.spec.client.url() == self.spec.client.url() && old.spec.client.model() == self.spec.client.model();
        if same {
            self.shared = old.shared.clone();
        } else {
            let mut sh = lock(&self.shared);
            let before = lock(&old.shared);
            sh.calls = before.calls.clone();
            sh.not_before = before.not_before;
            sh.stats = before.stats.clone();
        }
    }

    /// Its settings in words, for a reload's note of what changed.
    pub fn describe(&self) -> String {
        let s = &self.spec;
        let mut out = format!("{} at {}", s.client.model(), s.client.url());
        if s.vote {
            out.push_str(&format!(", votes (weight {}, every {} ticks, on a spread over {:?})", s.weight, s.ask_every_ticks, s.ask_on_spread));
        }
        if let Some(n) = s.review_above {
            out.push_str(&format!(", reviews changes over {n}"));
        }
        out.push_str(&format!(", fresh {} s, {} calls an hour", s.fresh_ms / 1000, s.max_calls_per_hour));
        out
    }

    /// Whether a change `from → to` is one it reviews.
    pub fn reviews(&self, from: u32, to: u32) -> bool {
        self.spec.review_above.is_some_and(|n| from.abs_diff(to) > n)
    }

    /// The vote a tick casts for the advisor: its latest answer while it is
    /// fresh, else an abstention saying why (none yet, too old, the latest
    /// call failed or its answer was refused). `None` if it does not vote.
    pub fn ballot(&self, now: i64) -> Option<AdvisorBallot> {
        if !self.spec.vote {
            return None;
        }
        let sh = lock(&self.shared);
        let slot = &sh.vote;
        let fresh = self.spec.fresh_ms;
        // The latest exchange counts: a good answer followed by a refused
        // or failed one is an abstention, not the older answer.
        let failed = slot.failure.as_ref().filter(|f| slot.answer.as_ref().is_none_or(|h| f.at >= h.at));
        if let Some(h) = slot.answer.as_ref().filter(|h| now - h.at <= fresh && failed.is_none())
            && let Answer::Vote(p) = &h.answer {
                return Some(AdvisorBallot { weight: self.spec.weight, proposal: Some(p.clone()), abstained: None, answered_at: Some(h.at) });
            }
        let mut why = match (failed, &slot.answer) {
            (Some(f), _) => format!("its last answer counts for nothing: {}", f.why),
            (None, Some(h)) => format!("its latest answer is {} s old; answers count for {} s", (now - h.at) / 1000, fresh / 1000),
            (None, None) => "it has not answered yet".into(),
        };
        if let Some((_, at)) = slot.asked {
            why.push_str(&format!(" (a question is in flight, asked {:.1} s ago)", (now - at) as f64 / 1000.0));
        }
        Some(AdvisorBallot { weight: self.spec.weight, proposal: None, abstained: Some(why), answered_at: None })
    }

    /// After a decision: put what was heard since the last one in its
    /// record, ask what the rules say to ask, and review its change if it
    /// is large. `current` is the pool's capacity.
    pub fn after_decision(&mut self, r: &mut DecisionRecord, facts: &Facts<'_>, current: u32, clock: &Arc<dyn Clock>, now: i64) -> Gate {
        let mut rec = r.advisor.take().unwrap_or_default();
        rec.heard = lock(&self.shared).heard.drain(..).collect();
        if self.spec.vote && r.mode != Mode::Standby {
            self.ticks += 1;
            let every = u64::from(self.spec.ask_every_ticks);
            let fresh = lock(&self.shared).vote.answer.as_ref().is_some_and(|h| now - h.at <= self.spec.fresh_ms);
            let why = if every > 0 && (self.ticks - 1).is_multiple_of(every) {
                Some(format!("every {every} ticks"))
            } else if fresh {
                // A disagreement it has a fresh answer for was weighed with it.
                None
            } else {
                self.spec.ask_on_spread.and_then(|limit| spread(r).filter(|s| *s > limit)).map(|s| format!("the experts disagree (spread {s:.2} of their mean)"))
            };
            if let Some(why) = why
                && let Ok(a) = self.ask(Question::Vote, why, r, facts, clock, now) {
                    rec.asked.push(a);
                }
        }
        let mut gate = Gate::Proceed;
        if r.mode == Mode::Live && self.reviews(current, r.desired) {
            let (from, to) = (current, r.desired);
            let review = |verdict: &str, reason: String| ReviewRecord { from, to, verdict: verdict.into(), reason };
            let timeout = self.spec.timeout_ms as f64 / 1000.0;
            let waiting = |asked_at: i64| format!("held for the advisor's review, asked {:.1} s ago (at most {timeout} s)", (now - asked_at) as f64 / 1000.0);
            let (record, g) = match self.review_state(from, to, now) {
                ReviewState::Agree(why) => (review("agree", why), Gate::Proceed),
                ReviewState::Object(why) => (review("object", why.clone()), Gate::Object(why)),
                ReviewState::Failed(why) => (review("unreviewed", format!("taken without a review, which failed: {why}")), Gate::Proceed),
                ReviewState::Waiting(at) => (review("waiting", waiting(at)), Gate::Hold(waiting(at))),
                ReviewState::NotAsked => {
                    let why = format!("a change of {} members (review_above {})", from.abs_diff(to), self.spec.review_above.unwrap_or_default());
                    match self.ask(Question::Review { from, to }, why, r, facts, clock, now) {
                        Ok(a) => {
                            rec.asked.push(a);
                            (review("waiting", waiting(now)), Gate::Hold(waiting(now)))
                        }
                        Err(why) => (review("unreviewed", format!("taken without a review: {why}")), Gate::Proceed),
                    }
                }
            };
            rec.review = Some(record);
            gate = g;
        }
        r.advisor = Some(rec);
        gate
    }

    /// The freshest review that applies to `from → to`: one of a change
    /// from the same size in the same direction, an agreement to one at
    /// least as large (agreeing to 3 → 5 is not agreeing to 3 → 40), an
    /// objection to one at most as large (an objection to 3 → 15 stands
    /// against 3 → 20, not against 3 → 6).
    fn review_state(&self, from: u32, to: u32, now: i64) -> ReviewState {
        let sh = lock(&self.shared);
        let slot = &sh.review;
        let fresh = self.spec.fresh_ms;
        let same = |q: &Question| matches!(q, Question::Review { from: f, to: t } if *f == from && (*t > *f) == (to > from));
        let size = |q: &Question| match q {
            Question::Review { from: f, to: t } => f.abs_diff(*t),
            Question::Vote => 0,
        };
        let change = from.abs_diff(to);
        let covers = |h: &Heard| match &h.answer {
            Answer::Review(r) if r.agree => change <= size(&h.q),
            _ => change >= size(&h.q),
        };
        let applies = |q: &Question| same(q) && size(q) == change;
        let answer = slot.answer.as_ref().filter(|h| same(&h.q) && covers(h) && now - h.at <= fresh);
        let failure = slot.failure.as_ref().filter(|f| applies(&f.q) && now - f.at <= fresh && answer.is_none_or(|h| f.at > h.at));
        match (answer, failure, slot.asked) {
            (_, _, Some((_, at))) => ReviewState::Waiting(at),
            (_, Some(f), None) => ReviewState::Failed(f.why.clone()),
            (Some(Heard { answer: Answer::Review(r), .. }), None, None) if r.agree => ReviewState::Agree(r.reason.clone()),
            (Some(Heard { answer: Answer::Review(r), .. }), None, None) => ReviewState::Object(r.reason.clone()),
            _ => ReviewState::NotAsked,
        }
    }

    /// Send `q` on a task of its own, unless one like it is in flight or
    /// the hour's calls are used up (then say which).
    fn ask(&self, q: Question, why: String, r: &DecisionRecord, facts: &Facts<'_>, clock: &Arc<dyn Clock>, now: i64) -> Result<AskedRecord, String> {
        let spec = &self.spec;
        // Votes leave a quarter of the hour's calls to reviews.
        let cap = match q {
            Question::Vote if spec.review_above.is_some() => spec.max_calls_per_hour - (spec.max_calls_per_hour / 4).max(1).min(spec.max_calls_per_hour - 1),
            _ => spec.max_calls_per_hour,
        };
        {
            let mut sh = lock(&self.shared);
            let sh = &mut *sh;
            if sh.slot(q).asked.is_some() {
                return Err("a question of this kind is in flight".into());
            }
            if let Some(until) = sh.not_before.filter(|until| now < *until) {
                return Err(format!("the endpoint asked to wait (Retry-After) {} s more", (until - now + 999) / 1000));
            }
            while sh.calls.front().is_some_and(|at| now - at >= HOUR_MS) {
                sh.calls.pop_front();
            }
            if sh.calls.len() >= cap as usize {
                sh.stats.skipped_cap += 1;
                let next = sh.calls.front().map_or(0, |at| (at + HOUR_MS - now) / 1000);
                let share = if cap < spec.max_calls_per_hour { format!("the {cap} of its {} calls an hour that votes may use", spec.max_calls_per_hour) } else { format!("the cap of {cap} calls an hour") };
                return Err(format!("{share} are used (the next is possible in {next} s)"));
            }
            sh.calls.push_back(now);
            sh.slot_mut(q).asked = Some((q, now));
        }
        let pool = Pool { id: r.pool.clone(), running: r.running, booting: r.booting, min: facts.min, max: facts.max };
        let schema = q.schema(&pool);
        let data = prompt::data(r, &pool, facts.interval_ms, facts.metrics, facts.recent, q, now);
        let (system, user) = spec.prompts.render(&pool.id, q, &schema, &data);
        let asked = AskedRecord { question: q.label(), why, prompt: cut(&user, spec.journal_bytes) };
        let (spec, shared, clock) = (self.spec.clone(), self.shared.clone(), clock.clone());
        tokio::spawn(async move {
            let request = ChatRequest { system: &system, user: &user, schema_name: q.schema_name(), schema: &schema };
            let reply = spec.client.ask(&request).await;
            let at = clock.now_ms();
            lock(&shared).settle(&spec, &pool, q, now, at, reply);
        });
        Ok(asked)
    }

    /// Its state for the API and `/metrics`.
    pub fn status(&self, now: i64) -> AdvisorStatus {
        let sh = lock(&self.shared);
        let st = &sh.stats;
        let tokens = st.prompt_tokens + st.completion_tokens;
        AdvisorStatus {
            endpoint: self.spec.client.url().to_owned(),
            model: self.spec.client.model().to_owned(),
            votes: self.spec.vote,
            review_above: self.spec.review_above,
            calls_last_hour: sh.calls.iter().filter(|at| now - **at < HOUR_MS).count() as u32,
            max_calls_per_hour: self.spec.max_calls_per_hour,
            calls: st.calls.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            failures: st.failures.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            skipped_at_cap: st.skipped_cap,
            answers_not_journalled: st.dropped_heard,
            latency_ms_sum: st.latency_ms_sum,
            last_latency_ms: st.last_latency_ms,
            prompt_tokens: st.prompt_tokens,
            completion_tokens: st.completion_tokens,
            spend: self.spec.cost_per_1k_tokens.map(|c| tokens as f64 / 1000.0 * c),
            in_flight: u32::from(sh.vote.asked.is_some()) + u32::from(sh.review.asked.is_some()),
            retry_after_until: sh.not_before.filter(|until| *until > now),
            last_answer_at: st.last_answer_at,
            last_problem: st.last_problem.clone(),
        }
    }
}

impl Shared {
    fn slot(&self, q: Question) -> &Slot {
        match q {
            Question::Vote => &self.vote,
            Question::Review { .. } => &self.review,
        }
    }

    fn slot_mut(&mut self, q: Question) -> &mut Slot {
        match q {
            Question::Vote => &mut self.vote,
            Question::Review { .. } => &mut self.review,
        }
    }

    /// Take in the outcome of the question `q` asked at `asked_at`.
    fn settle(&mut self, spec: &AdvisorSpec, pool: &Pool, q: Question, asked_at: i64, at: i64, reply: Result<ChatReply, ChatError>) {
        self.slot_mut(q).asked = None;
        let keep = |text: &str| cut(text, spec.journal_bytes);
        let mut heard = HeardRecord { question: q.label(), asked_at, latency_ms: (at - asked_at).max(0) as u64, outcome: String::new(), detail: String::new(), raw: None, prompt_tokens: None, completion_tokens: None };
        let (outcome, problem): (&'static str, Option<(&'static str, String)>) = match reply {
            Ok(reply) => {
                heard.latency_ms = reply.latency.as_millis() as u64;
                heard.raw = Some(keep(&reply.content));
                if let Some(u) = reply.usage {
                    // Numbers from the endpoint: a hostile one must not overflow them.
                    self.stats.prompt_tokens = self.stats.prompt_tokens.saturating_add(u.prompt_tokens);
                    self.stats.completion_tokens = self.stats.completion_tokens.saturating_add(u.completion_tokens);
                    (heard.prompt_tokens, heard.completion_tokens) = (Some(u.prompt_tokens), Some(u.completion_tokens));
                }
                match answer::read(q, &reply.content, pool, &spec.limits) {
                    Ok(a) => {
                        heard.detail = a.describe();
                        self.stats.last_answer_at = Some(at);
                        self.slot_mut(q).answer = Some(Heard { q, at, answer: a });
                        self.stats.last_problem = None;
                        ("answered", None)
                    }
                    Err(why) => ("refused", Some(("bad_answer", format!("the answer was refused: {why}")))),
                }
            }
            Err(e) => {
                heard.raw = e.raw().map(keep);
                if let ChatError::Status { retry_after_secs: Some(secs), .. } = e {
                    self.not_before = Some(at + secs.min(3600) as i64 * 1000);
                }
                ("failed", Some((e.kind(), format!("the call failed: {e}"))))
            }
        };
        heard.outcome = outcome.into();
        *self.stats.calls.entry(outcome).or_default() += 1;
        self.stats.latency_ms_sum = self.stats.latency_ms_sum.saturating_add(heard.latency_ms);
        self.stats.last_latency_ms = Some(heard.latency_ms);
        if let Some((kind, why)) = problem {
            let why = cut(&why, MAX_WHY);
            // Once per cause: a model that keeps answering the same nonsense
            // is in every decision's record, not in every log line.
            if self.stats.last_problem.as_deref() != Some(why.as_str()) {
                tracing::warn!(pool = %pool.id, question = %q.label(), "advisor: {why}");
            }
            *self.stats.failures.entry(kind).or_default() += 1;
            heard.detail = why.clone();
            self.stats.last_problem = Some(why.clone());
            self.slot_mut(q).failure = Some(Failure { q, at, why });
        }
        if self.heard.len() >= MAX_HEARD {
            self.heard.pop_front();
            self.stats.dropped_heard += 1;
        }
        self.heard.push_back(heard);
    }
}

/// How far apart the strategies' proposals are: (max − min) / mean.
fn spread(r: &DecisionRecord) -> Option<f64> {
    let d: Vec<f64> = r.votes.iter().filter(|v| v.expert != crate::decide::pipeline::ADVISOR).filter_map(|v| v.proposal.as_ref().map(|p| p.desired)).collect();
    if d.len() < 2 {
        return None;
    }
    let (lo, hi) = d.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    Some((hi - lo) / mean.max(1.0))
}

#[cfg(test)]
mod tests;
