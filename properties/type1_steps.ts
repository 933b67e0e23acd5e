/** Helpers of the type1 spec unit tests: run commands that must succeed, from opened groups. */
import assert from "node:assert/strict";
import { type Command, initialState, step, type SystemState, violations } from "../spec/mod.ts";
import { type1Machine } from "../model/machines/type1.ts";

/** Applies commands in order, asserting none fails or breaks an invariant; the final state. */
export function run(cmds: Command[], state: SystemState = opened()): SystemState {
  for (const cmd of cmds) {
    const r = step(state, cmd);
    assert.ok("ok" in r.ret, `${cmd.op} failed: ${JSON.stringify(r.ret)}`);
    assert.deepEqual(violations(r.state), [], `${cmd.op} broke an invariant`);
    state = r.state;
  }
  return state;
}

/**
 * Each process holds its groups' fds: container 1 groups 2, 10 and 20, container 2 groups 1, 11
 * and 21 (the type1 machine's prelude without its kernel DMA buffer, so domains start empty).
 */
export function opened(): SystemState {
  const opens = type1Machine.prelude.filter((c) => c.op === "type1.openGroup");
  assert.equal(opens.length, 6);
  return run(opens as Command[], initialState());
}
