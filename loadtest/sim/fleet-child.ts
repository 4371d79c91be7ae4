/** A simulator child process: runs its share of the fleet and reports to the parent over IPC. */
import { type FleetOptions, runFleet } from './fleet.js';

process.once('message', (o: FleetOptions) => {
  runFleet({ ...o, onProgress: (snapshot) => process.send?.({ kind: 'progress', snapshot }) }).then(
    (snapshot) => {
      process.send?.({ kind: 'done', snapshot }, () => process.exit(0));
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
