/**
 * Races: a sequential setup, then several actors (processes, the device) each running a short
 * program concurrently on one implementation under a {@link ControlledSched}. The invariants
 * are checked at every scheduling point, and the completed history must be linearizable: some
 * order of the operations that respects real time, replayed through the spec, must give every
 * operation's return value and events and end in the observed state.
 *
 * @module
 */
import fc from "fast-check";
import type { Event, Ret } from "../spec/types.ts";
import type { Quirks } from "../impl/quirks.ts";
import { ControlledSched, type Driver, type PctPlan } from "../impl/sched.ts";
import { checkLinearizable } from "./oracle/race.ts";
import { type Cmd, execGuarded, type Machine } from "./machine.ts";

/** A race to run: setup commands, then named actors with their programs. */
export interface RaceScenario<C extends Cmd = Cmd> {
  /** Commands run one after another before the actors start. */
  readonly setup: readonly C[];
  /** Concurrent actors. */
  readonly actors: readonly { readonly name: string; readonly program: readonly C[] }[];
}

/** One completed operation of the concurrent phase. */
export interface HistoryEntry<S = unknown, C extends Cmd = Cmd> {
  /** Actor name. */
  readonly actor: string;
  /** Position in the actor's program. */
  readonly index: number;
  /** The command. */
  readonly cmd: C;
  /** Logical time of invocation (scheduling steps taken before it started). */
  readonly invoked: number;
  /** Logical time of response. */
  readonly returned: number;
  /** Implementation's return value. */
  readonly ret: Ret;
  /** Events the operation raised. */
  readonly events: readonly Event[];
  /** Observed implementation state right after the response. */
  readonly observed: S;
}

/** Outcome of one race run. */
export interface RaceResult<S = unknown, C extends Cmd = Cmd> {
  /** The scheduling decisions of the concurrent phase, in order (`task:label`). */
  readonly schedule: readonly string[];
  /** Completed operations in response order. */
  readonly history: readonly HistoryEntry<S, C>[];
  /** The spec state after setup. */
  readonly start: S;
  /** Observed implementation state at the end. */
  readonly end: S;
  /** A sequential order explaining the history, when one exists. */
  readonly linearization?: readonly HistoryEntry<S, C>[];
  /** Why the run fails, or undefined. */
  readonly failure?: string;
}

/** Options of a race run. */
export interface RaceOptions<C extends Cmd = Cmd> {
  /** Seed defects switched on. */
  readonly quirks?: Quirks;
  /** Scheduling budget. */
  readonly maxSteps?: number;
  /** Called with each setup command (resolved), the spec's return value and its index. */
  readonly onSetupStep?: (cmd: C, ret: Ret, index: number) => void;
}

/** Faults that mean the device or the kernel touched memory it must not reach. */
const UNSAFE = new Set(["dma-to-unpinned-page", "dma-to-freed-frame", "oops", "use-after-free"]);

const FIRST: Driver = { choose: (eligible) => eligible[0] };

/** Runs a race scenario with `driver` choosing the interleaving. */
export async function runRace<S, C extends Cmd>(
  machine: Machine<S, C>,
  scenario: RaceScenario<C>,
  driver: Driver,
  options: RaceOptions<C> = {},
): Promise<RaceResult<S, C>> {
  const sched = new ControlledSched();
  const impl = machine.implementation(options.quirks ?? {}, sched);
  let start = machine.initial();
  const setup: C[] = [];
  for (const [index, generated] of scenario.setup.entries()) {
    const cmd = machine.resolve?.(start, generated) ?? generated;
    setup.push(cmd);
    const r = machine.step(start, cmd);
    options.onSetupStep?.(cmd, r.ret, index);
    start = r.state;
  }
  let failure: string | undefined;
  sched.spawn("setup", async () => {
    for (const cmd of setup) {
      const { exception } = await execGuarded(impl, cmd);
      if (exception !== undefined && !failure) {
        failure = `exception in the implementation (setup): ${exception}`;
      }
    }
  });
  await sched.run(FIRST);

  let clock = 0;
  const history: HistoryEntry<S, C>[] = [];
  for (const actor of scenario.actors) {
    sched.spawn(actor.name, async () => {
      for (const [index, generated] of actor.program.entries()) {
        const cmd = machine.resolve?.(impl.observe(), generated) ?? generated;
        const invoked = clock;
        const { ret, events, exception } = await execGuarded(impl, cmd);
        if (exception !== undefined && !failure) {
          failure = `exception in the implementation (${actor.name}): ${exception}`;
        }
        history.push({
          actor: actor.name,
          index,
          cmd,
          invoked,
          returned: clock,
          ret,
          events,
          observed: impl.observe(),
        });
      }
    });
  }
  const outcome = await sched.run(driver, {
    maxSteps: options.maxSteps,
    onStep: (name) => {
      clock++;
      if (failure) return;
      const broken = machine.violations(impl.observe(), "always");
      if (broken.length > 0) failure = `invariant ${broken[0]} (when ${name} ran on)`;
    },
  });
  const end = impl.observe();
  const base = { schedule: outcome.schedule, history, start, end };
  if (failure) return { ...base, failure };
  if (outcome.exhausted) return { ...base, failure: "scheduling budget exhausted (livelock?)" };
  if (outcome.blocked.length > 0) {
    return { ...base, failure: `deadlock: ${outcome.blocked.join(", ")}` };
  }
  const unsafe = history.flatMap((h) => h.events).find((e) =>
    typeof e.fault === "string" && UNSAFE.has(e.fault)
  );
  if (unsafe) return { ...base, failure: `device safety: ${JSON.stringify(unsafe)}` };
  const broken = machine.violations(end);
  if (broken.length > 0) return { ...base, failure: `invariant ${broken[0]} (at the end)` };

  const found = checkLinearizable(machine as Machine<unknown, Cmd>, start, history, end);
  if (!found.order) return { ...base, failure: "history is not linearizable against the spec" };
  return { ...base, linearization: found.order as HistoryEntry<S, C>[] };
}

/** The longest actor program: three make a history of 30 operations, the linearizer's 31 at most. */
export const ACTOR_COMMANDS_MAX = 10;

/**
 * Random race scenarios: a setup of up to `setup` steps drawn from `setupStep`, then two or
 * three actors with programs of up to three steps drawn from `actorStep` (each step one
 * command or a macro's few), each program cut to {@link ACTOR_COMMANDS_MAX} commands. The
 * actors contend (see {@link contend}) in the steps drawn to.
 */
export function raceScenario<C extends Cmd>(
  setupStep: fc.Arbitrary<readonly C[]>,
  actorStep: fc.Arbitrary<readonly C[]>,
  setup = 10,
): fc.Arbitrary<RaceScenario<C>> {
  const program = fc.array(fc.tuple(actorStep, fc.boolean()), {
    minLength: 1,
    maxLength: 3,
    size: "max",
  }).map((steps) =>
    steps.flatMap(([cmds, meet]) => cmds.map((cmd) => ({ cmd, meet })))
      .slice(0, ACTOR_COMMANDS_MAX)
  );
  return fc.record({
    setup: fc.array(setupStep, { maxLength: setup, size: "max" }).map((steps) => steps.flat()),
    actors: fc.array(program, { minLength: 2, maxLength: 3 }).map((ps) =>
      contend(ps).map((program, i) => ({ name: `actor${i + 1}`, program }))
    ),
  });
}

/**
 * Makes actors meet on one object: a race needs two actors on the same group, queue or
 * address, which independent draws seldom give. A later actor's command marked `meet` takes,
 * for every argument it shares by name and type with the first actor's first command, that
 * command's value. The first actor's program is unchanged.
 */
export function contend<C extends Cmd>(
  programs: readonly (readonly { readonly cmd: C; readonly meet: boolean }[])[],
): C[][] {
  const target = new Map(Object.entries(programs[0]?.[0]?.cmd ?? {}));
  return programs.map((program, i) =>
    program.map(({ cmd, meet }) => {
      if (i === 0 || !meet) return cmd;
      const met = Object.entries(cmd).map(([k, v]): [string, unknown] =>
        k !== "op" && target.has(k) && typeof target.get(k) === typeof v
          ? [k, target.get(k)]
          : [k, v]
      );
      return Object.fromEntries(met) as unknown as C;
    })
  );
}

/**
 * PCT plans for races of up to `tasks` actors: random initial priorities and `depth` - 1
 * distinct change points among the first `steps` scheduling decisions. Shrinking moves the
 * change points earlier and the priorities towards the actors' order.
 */
export function pctPlan(depth: number, steps: number, tasks = 3): fc.Arbitrary<PctPlan> {
  return fc.record({
    priorities: fc.array(fc.nat(), { minLength: tasks, maxLength: tasks }),
    changes: fc.uniqueArray(fc.nat({ max: steps - 1 }), {
      minLength: depth - 1,
      maxLength: depth - 1,
    }),
  });
}
