// Preloaded with `node --import`: records every module the process loads into the file named by
// $CAPGATE_MODULE_TRACE, one file: URL a line. ES modules through a load hook (it runs on the
// hooks thread, hence the file); CommonJS modules (commander's lib/, a native addon's loader)
// from require's cache at exit, which holds everything require() ever loaded.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const file = process.env.CAPGATE_MODULE_TRACE;
if (!file) throw new Error('module-trace.mjs: set CAPGATE_MODULE_TRACE to the file to write');
register(new URL('./module-trace-hooks.mjs', import.meta.url), { data: { file } });
const require = createRequire(import.meta.url);
process.on('exit', () => {
  appendFileSync(
    file,
    Object.keys(require.cache)
      .map((f) => `${pathToFileURL(f).href}\n`)
      .join(''),
  );
});
