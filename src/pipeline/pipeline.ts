// Runs the ordered stages for one request: the route stage first, then the stages the route table names.
// A stage passes or rejects; the first rejection ends the run. Nothing here knows about sockets or upstreams.
import type { Rejection, RequestContext, Stage, StageName, StageResult } from './types.js';

export type StageSet = Readonly<Record<StageName, Stage>>;

export type PipelineOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly rejection: Rejection; readonly stage: StageName };

export type StageObserver = (stage: StageName, result: StageResult, seconds: number) => void;

export class Pipeline {
  constructor(private readonly stages: StageSet, private readonly observe?: StageObserver) {}

  async run(ctx: RequestContext): Promise<PipelineOutcome> {
    const first = await this.#runStage('route', ctx);
    if (first) return first;
    const names = ctx.route?.stages ?? [];
    for (const name of names) {
      if (name === 'route') continue;
      const rejected = await this.#runStage(name, ctx);
      if (rejected) return rejected;
    }
    return { ok: true };
  }

  async #runStage(name: StageName, ctx: RequestContext): Promise<PipelineOutcome | undefined> {
    const stage = this.stages[name];
    const started = this.observe ? performance.now() : 0;
    const pending = stage.run(ctx);
    // Most stages are synchronous: avoid an await (and a microtask hop) when they are.
    const result = pending instanceof Promise ? await pending : pending;
    if (this.observe) this.observe(name, result, (performance.now() - started) / 1000);
    return result.ok ? undefined : { ok: false, rejection: result.rejection, stage: name };
  }
}
