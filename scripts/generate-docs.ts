// `npm run docs`: writes the documents generated from the schemas. Tests fail when the committed
// ones differ from what this would write (test/daemon/openapi.test.ts, config-docs.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../runtime/bootstrap/package-root.ts';
import { configJsonSchema, configurationMarkdown } from '../runtime/config/reference.ts';
import { CAPGATE_VERSION } from '../runtime/daemon/daemon.ts';
import { openApiDocument } from '../runtime/wire/openapi.ts';

export function generatedDocs(): Record<string, string> {
  return {
    'docs/openapi.json': `${JSON.stringify(openApiDocument('both', CAPGATE_VERSION), null, 2)}\n`,
    'docs/config.schema.json': `${JSON.stringify(configJsonSchema(), null, 2)}\n`,
    'docs/configuration.md': configurationMarkdown(),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const [file, text] of Object.entries(generatedDocs())) {
    fs.writeFileSync(path.join(PACKAGE_ROOT, file), text);
    console.log(`wrote ${file}`);
  }
}
