// tsc does not emit the generated protobufjs .js files; copy them beside the compiled code.
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
mkdirSync(join(root, 'dist', 'proto', 'gen'), { recursive: true });
cpSync(join(root, 'proto', 'gen', 'elkeid.js'), join(root, 'dist', 'proto', 'gen', 'elkeid.js'));
cpSync(join(root, 'proto', 'elkeid.proto'), join(root, 'dist', 'proto', 'elkeid.proto'));
