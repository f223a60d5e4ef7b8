// Checks a parsed component against the capgate:policy@1.0.0 world: which instances it may
// import, that every type it uses has the contract's shape, and that it exports exactly
// `evaluate` with the contract's type. Errors name the offending import or export.
import {
  CONTRACT_EXPORT,
  CONTRACT_INSTANCES,
  CONTRACT_TYPES,
  EVALUATE_TYPE,
  HOST_FUNCTIONS,
  HOST_TYPE_EXPORTS,
} from './contract.ts';
import { matchFuncType, matchValType } from './match.ts';
import { disallowedImport, invalidModule } from './rejection.ts';
import { describeFuncType } from './types.ts';
import type { ComponentSummary } from './parse.ts';
import type { InstanceShape, ValType } from './types.ts';
import { quoteName } from './quote.ts';

export interface ComponentInterface {
  /** Instance imports, e.g. ["capgate:policy/types@1.0.0", "capgate:policy/host@1.0.0"]. */
  imports: string[];
  exports: string[];
  /** Host functions the component-level host import declares. */
  hostFunctions: string[];
}

const ALLOWED = `only ${CONTRACT_INSTANCES.host} and ${CONTRACT_INSTANCES.types} may be imported`;

export function validateComponent(c: ComponentSummary): ComponentInterface {
  const imports: string[] = [];
  let hostFunctions: string[] = [];
  const seen = new Set<string>();
  for (const imp of c.imports) {
    if (seen.has(imp.name)) throw invalidModule(`import ${quoteName(imp.name)} appears twice`);
    seen.add(imp.name);
    const ext = imp.extern;
    // World-level `use` of contract types shows up as type imports: they carry no capability.
    if (ext.sort === 'type') continue;
    if (ext.sort !== 'instance')
      throw disallowedImport(`the policy imports ${ext.sort} ${quoteName(imp.name)}; ${ALLOWED}`);
    if (imp.name === CONTRACT_INSTANCES.host) hostFunctions = checkHostInstance(ext.exports);
    else if (imp.name === CONTRACT_INSTANCES.types) checkTypeExports(ext.exports, CONTRACT_TYPES, imp.name);
    else throw disallowedImport(`the policy imports ${quoteName(imp.name)}; ${ALLOWED}`);
    imports.push(imp.name);
  }

  const exports: string[] = [];
  for (const exp of c.exports) {
    if (exp.name !== CONTRACT_EXPORT) {
      throw invalidModule(
        `the policy exports ${exp.extern.sort} ${quoteName(exp.name)}, which the contract does not define; a policy exports only "evaluate"`,
      );
    }
    if (exports.includes(exp.name)) throw invalidModule(`export ${quoteName(exp.name)} appears twice`);
    if (exp.extern.sort !== 'func')
      throw invalidModule(`"evaluate" is exported as a ${exp.extern.sort}, not a function`);
    const m = matchFuncType(EVALUATE_TYPE, exp.extern.type, 'evaluate');
    if (m) {
      throw invalidModule(
        `"evaluate" does not have the contract's type (${m}); expected ${describeFuncType(EVALUATE_TYPE)}`,
      );
    }
    exports.push(exp.name);
  }
  if (!exports.includes(CONTRACT_EXPORT)) {
    throw invalidModule(
      'the component does not export "evaluate"; build it against the capgate:policy@1.0.0 world "policy"',
    );
  }

  for (const canon of c.canons) {
    if (canon.stringEncoding !== 'utf8') {
      throw invalidModule(
        `the component uses string-encoding=${canon.stringEncoding}; capgate requires UTF-8 (componentize with stringEncoding "utf8")`,
      );
    }
  }
  return { imports, exports, hostFunctions };
}

function checkHostInstance(exports: InstanceShape): string[] {
  const host = CONTRACT_INSTANCES.host;
  const functions: string[] = [];
  for (const [name, ext] of exports) {
    if (ext.sort === 'type') {
      checkTypeExports(new Map([[name, ext]]), HOST_TYPE_EXPORTS, host);
      continue;
    }
    const expected = HOST_FUNCTIONS.get(name);
    if (ext.sort !== 'func' || !expected) {
      throw disallowedImport(
        `the policy imports ${ext.sort} ${quoteName(name)} from ${host}, which the host does not provide (it provides ${[...HOST_FUNCTIONS.keys()].join(', ')})`,
      );
    }
    const m = matchFuncType(expected, ext.type, `${host}#${name}`);
    if (m)
      throw invalidModule(
        `imported host function "${name}" has the wrong type (${m}); expected ${describeFuncType(expected)}`,
      );
    functions.push(name);
  }
  return functions;
}

function checkTypeExports(exports: InstanceShape, allowed: ReadonlyMap<string, ValType>, instance: string): void {
  for (const [name, ext] of exports) {
    if (ext.sort !== 'type') {
      throw disallowedImport(
        `the policy imports ${ext.sort} ${quoteName(name)} from ${instance}, which only defines types`,
      );
    }
    const expected = allowed.get(name);
    if (!expected)
      throw invalidModule(
        `${instance} has no type ${quoteName(name)}; the component was built against a different contract`,
      );
    if (ext.type.kind !== 'value')
      throw invalidModule(`type "${name}" from ${instance} is a ${ext.type.kind}, not a value type`);
    const m = matchValType(expected, ext.type.type, name);
    if (m) throw invalidModule(`type "${name}" from ${instance} does not match the contract (${m})`);
  }
}
