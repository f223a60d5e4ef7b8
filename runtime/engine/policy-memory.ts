// The memory an instrumented policy imports (see instrument/memory-import.ts): its limits, read
// once per module from the plan section, and the import object that supplies it.
import { MEMORY_IMPORT_MODULE, MEMORY_IMPORT_NAME, MEMORY_PLAN_SECTION } from './instrumentation-globals.ts';

export const PAGE_BYTES = 65536;

export interface MemoryPlan {
  initialPages: number;
  maximumPages: number;
}

const plans = new WeakMap<WebAssembly.Module, MemoryPlan | null>();

/** The imported memory's limits, or null when the module defines its own memory (not instrumented). */
export function memoryPlanOf(module: WebAssembly.Module): MemoryPlan | null {
  let plan = plans.get(module);
  if (plan === undefined) {
    plan = readPlan(module);
    plans.set(module, plan);
  }
  return plan;
}

function readPlan(module: WebAssembly.Module): MemoryPlan | null {
  const imported = WebAssembly.Module.imports(module).some(
    (i) => i.kind === 'memory' && i.module === MEMORY_IMPORT_MODULE && i.name === MEMORY_IMPORT_NAME,
  );
  if (!imported) return null;
  const sections = WebAssembly.Module.customSections(module, MEMORY_PLAN_SECTION);
  const payload = sections[0];
  if (sections.length !== 1 || payload === undefined || payload.byteLength !== 8) {
    throw new Error(
      `the module imports ${MEMORY_IMPORT_MODULE}.${MEMORY_IMPORT_NAME} but has no valid ${MEMORY_PLAN_SECTION} section (not made by the compile step)`,
    );
  }
  const v = new DataView(payload);
  return { initialPages: v.getUint32(0, true), maximumPages: v.getUint32(4, true) };
}

/** A brand-new memory in the fresh state the plan describes: zeroed, at its initial size. */
export function newPolicyMemory(plan: MemoryPlan): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: plan.initialPages, maximum: plan.maximumPages });
}

/** The host imports plus, when the module imports it, the memory it runs in. */
export function withMemory(imports: WebAssembly.Imports, memory: WebAssembly.Memory | undefined): WebAssembly.Imports {
  return memory === undefined ? imports : { ...imports, [MEMORY_IMPORT_MODULE]: { [MEMORY_IMPORT_NAME]: memory } };
}

/** Import object for instantiating a policy module outside the engine (tests, benchmarks). */
export function policyImports(module: WebAssembly.Module, hostImports: WebAssembly.Imports): WebAssembly.Imports {
  const plan = memoryPlanOf(module);
  return withMemory(hostImports, plan === null ? undefined : newPolicyMemory(plan));
}
