/** Process entry of the CLI (bin/fleetgate.js loads the compiled form after its runtime check). */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
