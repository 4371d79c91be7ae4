/**
 * BatchGetItem over any number of keys of one table. The implementation lives in the task
 * repository (store/batch-get.ts), the only place in the task engine that builds DynamoDB
 * commands; this path stays for the modules that import it.
 */
export { BATCH_GET_ATTEMPTS, batchGet } from './store/batch-get.js';
