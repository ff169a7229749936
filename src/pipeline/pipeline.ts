// Runs the ordered stages for one request: the route stage first, then the stages the route table names.
// A stage passes or rejects; the first rejection ends the run. Nothing here knows about sockets or upstreams.
import type { Rejection, RequestContext, Stage, StageName, StageResult } from './types.js';

export type StageSet = Readonly<Record<StageName, Stage>>;

export type PipelineOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly rejection: Rejection; readonly stage: StageName };

export type StageObserver = (stage: StageName, result: StageResult, seconds: number) => void;

const PASSED: PipelineOutcome = Object.freeze({ ok: true });

export class Pipeline {
  constructor(private readonly stages: StageSet, private readonly observe?: StageObserver) {}

  /** One promise per request: synchronous stages (most of them) are not awaited, so cost no microtask hop. */
  async run(ctx: RequestContext): Promise<PipelineOutcome> {
    let first = this.#runStage('route', ctx);
    if (first instanceof Promise) first = await first;
    if (!first.ok) return { ok: false, rejection: first.rejection, stage: 'route' };
    const names = ctx.route?.stages ?? [];
    for (const name of names) {
      if (name === 'route') continue;
      let result = this.#runStage(name, ctx);
      if (result instanceof Promise) result = await result;
      if (!result.ok) return { ok: false, rejection: result.rejection, stage: name };
    }
    return PASSED;
  }

  #runStage(name: StageName, ctx: RequestContext): StageResult | Promise<StageResult> {
    const stage = this.stages[name];
    const observe = this.observe;
    if (!observe) return stage.run(ctx);
    const started = performance.now();
    const pending = stage.run(ctx);
    if (pending instanceof Promise) {
      return pending.then((result) => {
        observe(name, result, (performance.now() - started) / 1000);
        return result;
      });
    }
    observe(name, pending, (performance.now() - started) / 1000);
    return pending;
  }
}
