import { startTestDynamo } from './helpers/dynalite.js';
import { createRegistryStore } from '../gateway/discovery/registry-store.js';
process.on('uncaughtException', (e) => { console.log('UNCAUGHT', (e as Error).message, (e as Error).stack?.split('\n').slice(0,12).join('\n')); });
const db = await startTestDynamo();
const store = createRegistryStore({ client: db.client, tablePrefix: db.prefix });
for (let i = 0; i < 5; i++) await store.register({ name: 'a', ip: '1.1.1.1', port: 1 + i, weight: 0 });
for (let k = 0; k < 5; k++) {
  await store.list('a');
  await store.summary();
}
console.log('closing');
await db.close();
console.log('closed');
await new Promise(r => setTimeout(r, 300));
