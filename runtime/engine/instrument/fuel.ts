// Fuel metering, injected at upload time.
//
// Cost model: the body of every function and of every loop is a *region*; its cost is the
// number of binaryen IR expressions in it, not counting the bodies of nested loops (those are
// regions of their own), and at least 1. The cost is charged on entry to the region: at
// function entry and at every loop header (each iteration re-enters the header). Code outside
// loops runs at most once per region entry, and every backward jump lands on a loop header,
// so fuel charged >= expressions executed; a branch not taken is still paid for (a static,
// deterministic over-approximation). Charging is
//     fuel -= cost; if (fuel < 0) unreachable
// so after a fuel trap the global is negative, and `limits.fuel - remaining` is the fuel used.
// The start function is a function like any other, so it is metered too.
//
// Bulk memory: memory.copy, memory.fill and memory.init are single expressions whose work is
// proportional to their size operand (up to the whole memory). Besides their static 1, each
// one charges `size >> 4` (one unit per 16 bytes, size as a u32) when it runs, before it
// touches memory, with the same trap when the fuel goes negative (bulk-memory.ts). A
// memory.grow that succeeds pays 4096 per new page, the same rate (their first touch costs a
// page fault each; memory.ts). So fuel charged >= work done within a constant factor, and a
// fuel slice bounds time.
//
// Small helpers are charged by their callers: a function that has no loop, makes no indirect
// call, only calls other such functions, and can only be reached by direct calls (not
// exported, not in a table, not the start function) runs a bounded number of expressions per
// call, its *total* cost. Each direct call site adds that total to the caller's region instead
// of the helper charging on entry. Same bound, but no charge in the hot path of tiny helpers
// (measured: a loop calling a 5-instruction helper went from 1.8x to ~1x of raw).
import binaryen from 'binaryen';
import { invalidModule } from '../component/rejection.ts';
import {
  CHILDREN,
  expressionKindName,
  isTailCall,
  isTailCallIndirect,
  loopBody,
  setFunctionBody,
} from './binaryen-ir.ts';
import type { Ref } from './binaryen-ir.ts';

export interface FuelRewrite {
  /** Called for every expression after its children were rewritten; may return a replacement. */
  replace?(expr: Ref, id: number): Ref;
}

/** Above this static total a helper is charged on entry like any function (bounds blow-up of call DAGs). */
const MAX_CALLER_CHARGED_COST = 10_000;

function childrenOf(expr: Ref, id: number): ReturnType<NonNullable<ReturnType<typeof CHILDREN.get>>> {
  const children = CHILDREN.get(id);
  if (!children) {
    throw invalidModule(
      `the core module uses ${expressionKindName(id)}, which capgate does not support (allowed: MVP, bulk memory, sign-ext, non-trapping float-to-int, multivalue, SIMD)`,
    );
  }
  if ((id === binaryen.CallId && isTailCall(expr)) || (id === binaryen.CallIndirectId && isTailCallIndirect(expr))) {
    throw invalidModule('the core module uses tail calls, which capgate does not support');
  }
  return children(expr);
}

interface FunctionShape {
  /** Expressions in the body (all of them: only used when the body has no loop). */
  count: number;
  hasLoop: boolean;
  hasIndirectCall: boolean;
  /** Direct call targets, one entry per call site. */
  calls: string[];
}

function shapeOf(body: Ref): FunctionShape {
  const shape: FunctionShape = { count: 0, hasLoop: false, hasIndirectCall: false, calls: [] };
  const stack = [body];
  while (stack.length > 0) {
    const expr = stack.pop()!;
    const id = binaryen.getExpressionId(expr);
    const children = childrenOf(expr, id);
    shape.count++;
    if (id === binaryen.LoopId) shape.hasLoop = true;
    if (id === binaryen.CallIndirectId) shape.hasIndirectCall = true;
    if (id === binaryen.CallId) shape.calls.push((binaryen.getExpressionInfo(expr) as binaryen.CallInfo).target);
    for (const slot of children) {
      const c = slot.get(expr);
      if (c) stack.push(c);
    }
  }
  return shape;
}

/** Static total cost of each function its callers may pay for (see header); others absent. */
function callerChargedCosts(module: binaryen.Module): Map<string, number> {
  const shapes = new Map<string, FunctionShape>();
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const info = binaryen.getFunctionInfo(module.getFunctionByIndex(i));
    if (!info.module && info.body) shapes.set(info.name, shapeOf(info.body));
  }
  const reachableIndirectly = new Set<string>();
  for (let i = 0; i < module.getNumExports(); i++) {
    const e = binaryen.getExportInfo(module.getExportByIndex(i));
    if (e.kind === binaryen.ExternalFunction) reachableIndirectly.add(e.value);
  }
  for (let i = 0; i < module.getNumElementSegments(); i++) {
    for (const name of binaryen.getElementSegmentInfo(module.getElementSegmentByIndex(i)).data)
      reachableIndirectly.add(name);
  }
  const start = module.getStart();
  if (start) reachableIndirectly.add(binaryen.getFunctionInfo(start).name);

  const totals = new Map<string, number | null>(); // null: not caller-charged
  const inProgress = new Set<string>();
  const total = (name: string): number | null => {
    if (totals.has(name)) return totals.get(name)!;
    const shape = shapes.get(name);
    if (!shape || shape.hasLoop || shape.hasIndirectCall || inProgress.has(name)) return null; // imports, loops, recursion
    inProgress.add(name);
    let sum: number | null = shape.count;
    for (const callee of shape.calls) {
      const t = total(callee);
      if (t === null || sum === null || sum + t > MAX_CALLER_CHARGED_COST) {
        sum = null;
        break;
      }
      sum += t;
    }
    inProgress.delete(name);
    totals.set(name, sum);
    return sum;
  };
  const out = new Map<string, number>();
  for (const name of shapes.keys()) {
    const t = total(name);
    if (t !== null && !reachableIndirectly.has(name)) out.set(name, t);
  }
  return out;
}

/** `fuel -= amount (an i64 expression); if (fuel < 0) unreachable`: the one way fuel is charged. */
export function fuelCharge(module: binaryen.Module, fuelGlobal: string, amount: Ref): Ref {
  return module.block(null, [
    module.global.set(fuelGlobal, module.i64.sub(module.global.get(fuelGlobal, binaryen.i64), amount)),
    module.if(module.i64.lt_s(module.global.get(fuelGlobal, binaryen.i64), module.i64.const(0n)), module.unreachable()),
  ]);
}

export function injectFuel(module: binaryen.Module, fuelGlobal: string, rewrite: FuelRewrite = {}): void {
  const callerCharged = callerChargedCosts(module);

  const charge = (cost: number): Ref => fuelCharge(module, fuelGlobal, module.i64.const(BigInt(cost)));

  // Costs of the regions currently open (innermost last).
  const regions: number[] = [];

  const region = (body: Ref): Ref => {
    regions.push(0);
    const newBody = visit(body);
    const cost = Math.max(1, regions.pop()!);
    return module.block(null, [charge(cost), newBody], binaryen.getExpressionType(newBody));
  };

  const visit = (expr: Ref): Ref => {
    const id = binaryen.getExpressionId(expr);
    const children = childrenOf(expr, id);
    regions[regions.length - 1]! += 1;
    if (id === binaryen.LoopId) {
      loopBody.set(expr, region(loopBody.get(expr)));
      return expr;
    }
    if (id === binaryen.CallId) {
      const target = (binaryen.getExpressionInfo(expr) as binaryen.CallInfo).target;
      regions[regions.length - 1]! += callerCharged.get(target) ?? 0;
    }
    for (const slot of children) {
      const child = slot.get(expr);
      if (!child) continue; // absent optional child (if without else, br without value)
      const replaced = visit(child);
      if (replaced !== child) slot.set(expr, replaced);
    }
    return rewrite.replace ? rewrite.replace(expr, id) : expr;
  };

  for (let i = 0; i < module.getNumFunctions(); i++) {
    const fn = module.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(fn);
    if (info.module || !info.body) continue; // imports have no body
    if (callerCharged.has(info.name)) {
      // Still rewritten (memory.grow), but its cost is paid at its call sites.
      regions.push(0);
      const body = visit(info.body);
      regions.pop();
      if (body !== info.body) setFunctionBody(fn, body);
    } else {
      setFunctionBody(fn, region(info.body));
    }
  }
}
