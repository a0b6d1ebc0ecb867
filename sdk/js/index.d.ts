// The contract's types as a JavaScript policy sees them (after the kit's
// conversion: times are plain numbers of milliseconds since the Unix epoch).

/** `values` is the host's Float64Array inside a component (an array in tests): index, iterate and map it alike. */
export interface MetricWindow { name: string; times: number[]; values: ArrayLike<number> & Iterable<number> }
export interface Pool { id: string; running: number; booting: number; min: number; max: number }
export interface Action { at: number; from: number; to: number; reason: string }
export interface Proposal { desired: number; confidence: number; reason: string }
export type Ballot = { tag: 'proposed'; val: Proposal } | { tag: 'abstained'; val: string };
export interface Vote { expert: string; weight: number; ballot: Ballot }
export interface InstanceKind {
  name: string; provider: string; region: string;
  onDemandHourly: number; spotHourly?: number; reservedHourly?: number;
  vcpus: number; memoryGib: number; gpus: number;
}
export interface Placement { kind?: string; onDemand: number; spot: number }
export interface Gauge { name: string; value: number }
export interface Budget { limit: number; periodHours: number; spent: number; elapsedHours: number }
export type Verdict = { tag: 'allow' } | { tag: 'clamp'; val: number } | { tag: 'deny' };

export interface StrategyInput {
  pool: Pool; metrics: MetricWindow[]; now: number; recentActions: Action[];
  settings: string; state?: Uint8Array;
}
export interface CostInput {
  pool: Pool; proposed: number; kind?: string; catalog: InstanceKind[]; budget?: Budget;
  placement?: Placement; metrics: MetricWindow[]; now: number; settings: string; state?: Uint8Array;
}
export interface ConsensusInput { pool: Pool; votes: Vote[]; now: number; settings: string; state?: Uint8Array }
export interface CostDecision { verdict: Verdict; costPerHour: number; reason: string; placement?: Placement }
export interface Combined { desired: number; confidence: number; explanation: string }

export interface Field<T = unknown> { kind: string; default?: T; optional?: boolean }
export interface NumberOptions { default?: number; min?: number; max?: number }
export function number(opts?: NumberOptions): Field<number>;
export function integer(opts?: NumberOptions): Field<number>;
export function string(opts?: { default?: string }): Field<string>;
export function boolean(opts?: { default?: boolean }): Field<boolean>;
export function list<T>(item: Field<T>, opts?: { default?: T[] }): Field<T[]>;
export function object(fields: Record<string, Field>, opts?: { default?: object }): Field<object>;
export function optional<T>(inner: Field<T>): Field<T | null>;
export function any(opts?: { default?: unknown }): Field<unknown>;
export function parseSettings(schema: Record<string, Field> | null, text: string): any;

export interface Policy<I, O, S, St> {
  evaluate(input: I, settings: S, state: St): O;
  /** A schema of the settings' fields; omitted or null: any JSON table. */
  settings?: Record<string, Field> | null;
  /** The state's defaults; omitted: the policy keeps no state. */
  state?: St;
  /** Extra checks on parsed settings: return an error message, or nothing. */
  validate?(settings: S): string | undefined | void;
}
export interface Export<I, O> { validateConfig(settings: string): void; evaluate(input: I): O }
export function strategy<S = any, St = any>(p: Policy<StrategyInput, Proposal, S, St>): Export<StrategyInput, { proposal: Proposal; gauges: Gauge[]; state?: Uint8Array }>;
export function costRule<S = any, St = any>(p: Policy<CostInput, CostDecision, S, St>): Export<CostInput, CostDecision & { state?: Uint8Array }>;
export function consensus<S = any, St = any>(p: Policy<ConsensusInput, Combined, S, St>): Export<ConsensusInput, Combined & { state?: Uint8Array }>;

export class Abstain extends Error {}
export class NoOpinion extends Abstain { constructor(reason: string) }
export class SettingsError extends Error {}
export class PolicyError extends Error { value: string }
export const NO_OPINION: string;
export const CONTRACT: string;

export const log: Record<'trace' | 'debug' | 'info' | 'warn' | 'error', (message: string) => void>;
export const logged: [string, string][];
export function report(name: string, value: number): void;

export function metric(input: { metrics: MetricWindow[] }, name: string): MetricWindow | undefined;
export function last(w?: MetricWindow): number | undefined;
export function samples(w: MetricWindow): { at: number; value: number }[];
export function since(w: MetricWindow, now: number, windowMs: number): { at: number; value: number }[];
export function mean(values: Iterable<number>): number | undefined;
export function meanSince(w: MetricWindow, now: number, windowMs: number): number | undefined;
export function movingAverage(values: number[], n: number): number | undefined;
export function ewma(values: Iterable<number>, alpha: number): number | undefined;
export function percentile(values: number[] | MetricWindow, p: number): number | undefined;
export interface Trend { slope: number; intercept: number; origin: number; at(t: number): number; perSecond(): number }
export function linearTrend(w: MetricWindow): Trend | undefined;
export function counterRate(w: MetricWindow): number | undefined;
export function capacity(pool: Pool): number;
export function clamp(pool: Pool, desired: number): number;
export function proposalOf(vote: Vote): Proposal | undefined;
export function allow(): Verdict;
export function clampTo(capacity: number): Verdict;
export function deny(): Verdict;
