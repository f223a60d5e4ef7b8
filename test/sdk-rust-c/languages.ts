// Which builds of each example the SDK tests run: the committed Rust and C artifacts.
import { readPrebuilt, SDK_EXAMPLES, SDK_LANGUAGES, type SdkLanguage } from '../../scripts/build-guests/prebuilt.ts';
import { policyCoreModule } from './harness/core-module.ts';
import type { ExampleName } from './scenarios.ts';

export interface Build {
  language: SdkLanguage;
  example: ExampleName;
  component: Uint8Array;
  core: WebAssembly.Module;
}

export function prebuiltBuilds(): Build[] {
  return SDK_LANGUAGES.flatMap((language) =>
    SDK_EXAMPLES.map((example) => {
      const component = readPrebuilt(language, example);
      return { language, example, component, core: policyCoreModule(component) };
    }),
  );
}
