/** Process entry of the CLI (bin/fleetgate.js loads the compiled form after its runtime check). */
import { main } from './main.js';

// Every file fleetgate creates is private unless it says otherwise (certificates are chmod 0644
// explicitly): the store's LevelDB files, spool segments, uploads, keys.
process.umask(0o077);

process.exitCode = await main(process.argv.slice(2));
