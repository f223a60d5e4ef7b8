// The part of the WebAssembly JS API that capgate uses. Node implements all of it, but this
// project compiles without the DOM lib (it is a daemon) and @types/node does not declare it.
// Written against the WebAssembly JS API specification; extend it when new API is used.

declare namespace WebAssembly {
  type ImportExportKind = 'function' | 'table' | 'memory' | 'global' | 'tag';
  type ValueType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'externref' | 'anyfunc';
  // biome-ignore lint/complexity/noBannedTypes: an exported function has no static signature; callers narrow it
  type ExportValue = Function | Global | Memory | Table;
  type ImportValue = ExportValue | number | bigint;
  type Exports = Record<string, ExportValue>;
  type ModuleImports = Record<string, ImportValue>;
  type Imports = Record<string, ModuleImports>;

  interface ModuleExportDescriptor {
    name: string;
    kind: ImportExportKind;
  }
  interface ModuleImportDescriptor {
    module: string;
    name: string;
    kind: ImportExportKind;
  }

  // biome-ignore lint/suspicious/noEmptyInterface: opaque, as in the standard's own declaration
  interface Module {}
  var Module: {
    prototype: Module;
    new (bytes: ArrayBufferView | ArrayBuffer): Module;
    exports(module: Module): ModuleExportDescriptor[];
    imports(module: Module): ModuleImportDescriptor[];
    customSections(module: Module, sectionName: string): ArrayBuffer[];
  };

  interface Instance {
    readonly exports: Exports;
  }
  var Instance: {
    prototype: Instance;
    new (module: Module, importObject?: Imports): Instance;
  };

  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  interface Memory {
    readonly buffer: ArrayBuffer;
    /** Grows by `delta` pages; returns the previous size in pages. */
    grow(delta: number): number;
  }
  var Memory: {
    prototype: Memory;
    new (descriptor: MemoryDescriptor): Memory;
  };

  interface GlobalDescriptor {
    value: ValueType;
    mutable?: boolean;
  }
  interface Global {
    /** number for i32/f32/f64, bigint for i64. */
    value: unknown;
    valueOf(): unknown;
  }
  var Global: {
    prototype: Global;
    new (descriptor: GlobalDescriptor, value?: unknown): Global;
  };

  interface Table {
    readonly length: number;
  }
  var Table: {
    prototype: Table;
  };

  interface CompileError extends Error {}
  var CompileError: { prototype: CompileError; new (message?: string): CompileError };
  interface LinkError extends Error {}
  var LinkError: { prototype: LinkError; new (message?: string): LinkError };
  interface RuntimeError extends Error {}
  var RuntimeError: { prototype: RuntimeError; new (message?: string): RuntimeError };

  interface WebAssemblyInstantiatedSource {
    module: Module;
    instance: Instance;
  }

  function compile(bytes: ArrayBufferView | ArrayBuffer): Promise<Module>;
  function validate(bytes: ArrayBufferView | ArrayBuffer): boolean;
  function instantiate(
    bytes: ArrayBufferView | ArrayBuffer,
    importObject?: Imports,
  ): Promise<WebAssemblyInstantiatedSource>;
  function instantiate(module: Module, importObject?: Imports): Promise<Instance>;
}
