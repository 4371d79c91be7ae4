/**
 * A child of a benchmark: the embedded DynamoDB API (dynalite) in its own process, as DynamoDB is
 * a service of its own in production, so the store's CPU is not taken from the measured process.
 * Tells the parent its endpoint; exits when told to stop or when the parent goes away.
 */
import { startEmbeddedDynamo } from '../../platform/store/embedded.js';

process.once('message', async (o: { dir?: string }) => {
  const dynamo = await startEmbeddedDynamo(o.dir ? { dir: o.dir } : {});
  process.send?.({ endpoint: dynamo.endpoint });
  const stop = () => {
    dynamo.close().finally(() => process.exit(0));
  };
  process.on('message', (m) => {
    if (m === 'stop') stop();
  });
  process.on('disconnect', stop);
});
