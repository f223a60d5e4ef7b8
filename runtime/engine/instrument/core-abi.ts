// The core-module side of the contract (legacy canonical-ABI names): what the module that
// runs may import and must export, with exact core signatures.
import binaryen from 'binaryen';
import { HOST_INTERFACE } from '../../contract/types.ts';
import { disallowedImport, invalidModule } from '../component/rejection.ts';
import { coreImports } from './core-sections.ts';
import { quoteName } from '../component/quote.ts';
import {
  type Core,
  type CoreSig,
  EXPORT_SIGNATURES,
  HOST_IMPORT_SIGNATURES,
  RESERVED_EXPORT_PREFIX,
} from './core-signatures.ts';

export { EXPORT_SIGNATURES, HOST_IMPORT_SIGNATURES, RESERVED_EXPORT_PREFIX } from './core-signatures.ts';

const CORE_NAMES = new Map<number, Core | 'f32' | 'f64' | 'v128'>([
  [binaryen.i32, 'i32'],
  [binaryen.i64, 'i64'],
  [binaryen.f32, 'f32'],
  [binaryen.f64, 'f64'],
  [binaryen.v128, 'v128'],
]);

function typeList(t: binaryen.Type): string[] {
  return binaryen.expandType(t).map((x) => CORE_NAMES.get(x) ?? 'ref');
}

const show = (s: { params: string[]; results: string[] }): string =>
  `(${s.params.join(', ')}) -> (${s.results.join(', ')})`;

function sameSig(fn: binaryen.FunctionRef, want: CoreSig): { ok: boolean; found: string } {
  const info = binaryen.getFunctionInfo(fn);
  const found = { params: typeList(info.params), results: typeList(info.results) };
  const ok = found.params.join() === want.params.join() && found.results.join() === want.results.join();
  return { ok, found: show(found) };
}

export interface CoreAbi {
  /** Host functions the core module imports, in import order. */
  hostFunctions: string[];
  hasPostReturn: boolean;
}

/** Checks imports and exports of the module that will run. `bytes` is the same module. */
export function checkCoreAbi(module: binaryen.Module, bytes: Uint8Array): CoreAbi {
  for (const imp of coreImports(bytes)) {
    if (imp.kind !== 'func') {
      throw disallowedImport(
        `the core module imports a ${imp.kind} ${quoteName(imp.module)}.${quoteName(imp.name)}; a policy may import only host functions`,
      );
    }
  }
  const hostFunctions: string[] = [];
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const fn = module.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(fn);
    if (!info.module) continue;
    const base = info.base ?? '';
    const want = HOST_IMPORT_SIGNATURES.get(base);
    if (info.module !== HOST_INTERFACE || !want) {
      throw disallowedImport(
        `the core module imports ${quoteName(info.module)}.${quoteName(base)}; only ${[...HOST_IMPORT_SIGNATURES.keys()].join(', ')} from "${HOST_INTERFACE}" are allowed`,
      );
    }
    const { ok, found } = sameSig(fn, want);
    if (!ok) throw invalidModule(`host import "${base}" has core signature ${found}; the contract needs ${show(want)}`);
    if (hostFunctions.includes(base)) throw invalidModule(`host function "${base}" is imported twice`);
    hostFunctions.push(base);
  }

  const exports = new Map<string, binaryen.ExportInfo>();
  for (let i = 0; i < module.getNumExports(); i++) {
    const info = binaryen.getExportInfo(module.getExportByIndex(i));
    if (info.name.startsWith(RESERVED_EXPORT_PREFIX)) {
      throw invalidModule(
        `the core module exports ${quoteName(info.name)}; names starting with ${RESERVED_EXPORT_PREFIX} are reserved for the engine`,
      );
    }
    exports.set(info.name, info);
  }
  const memory = exports.get('memory');
  if (!memory || memory.kind !== binaryen.ExternalMemory)
    throw invalidModule('the core module does not export its linear memory as "memory"');
  const checkFunc = (name: keyof typeof EXPORT_SIGNATURES, required: boolean): boolean => {
    const e = exports.get(name);
    if (!e) {
      if (required) throw invalidModule(`the core module does not export "${name}" ${show(EXPORT_SIGNATURES[name])}`);
      return false;
    }
    if (e.kind !== binaryen.ExternalFunction) throw invalidModule(`core export "${name}" is not a function`);
    const { ok, found } = sameSig(module.getFunction(e.value), EXPORT_SIGNATURES[name]);
    if (!ok)
      throw invalidModule(
        `core export "${name}" has signature ${found}; the contract needs ${show(EXPORT_SIGNATURES[name])}`,
      );
    return true;
  };
  checkFunc('evaluate', true);
  checkFunc('cabi_realloc', hostFunctions.includes('query-vm-identity'));
  const hasPostReturn = checkFunc('cabi_post_evaluate', false);
  return { hostFunctions, hasPostReturn };
}
