/**
 * `/grpc.FileExt/Upload`: an agent streams a file (task 1050) in chunks; we write it under the
 * data dir, bounded in size, answer SUCCESS or FAILED, keep a result by token in
 * `results.jsonl`, and report the outcome to the task-result path (a 5100 result with the token,
 * as Elkeid's upload handler posts it to its manager, §1.11): the stock agent reports only its
 * own failures, so without this a successful upload task ends `result_failed` by timeout.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import { grpc } from '../../proto/gen/elkeid.js';
import type { ServerCall } from '../grpc/server-call.js';
import { GrpcError, Status } from '../grpc/status.js';
import type { TaskResultSink } from './special-records.js';

export const UPLOAD_METHOD = '/grpc.FileExt/Upload';
/** Tokens name files: no separators, no dots first, bounded. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

export interface UploadResult {
  token: string;
  status: 'succeed' | 'failed';
  /** File name under the uploads dir (success) or the error (failure), as Elkeid's `msg`. */
  msg: string;
  data_type: '5100';
  size: number;
  sha256: string;
  at: number;
}

/** Upload results by token, kept in memory (bounded) and appended to `results.jsonl`. */
export class UploadResults {
  readonly dir: string;
  readonly #byToken = new Map<string, UploadResult>();
  readonly #max: number;

  constructor(dir: string, max = 10_000) {
    this.dir = dir;
    this.#max = max;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  record(r: UploadResult): void {
    this.#byToken.set(r.token, r);
    if (this.#byToken.size > this.#max) this.#byToken.delete(this.#byToken.keys().next().value!);
    appendFileSync(path.join(this.dir, 'results.jsonl'), `${JSON.stringify(r)}\n`);
  }

  get(token: string): UploadResult | undefined {
    return this.#byToken.get(token);
  }
}

export function createUploadHandler(deps: {
  results: UploadResults;
  maxBytes: number;
  logger: Logger;
  metrics: Metrics;
  /** Where the outcome goes as a 5100 task result (the manager reconciles it by token). */
  taskResults?: TaskResultSink;
  /** The agent whose stream runs on an HTTP/2 session ('' when none does). */
  agentOn?: (connection: unknown) => string | undefined;
}) {
  const log = deps.logger.child({ component: 'upload' });
  return function upload(call: ServerCall): void {
    let token: string | undefined;
    let file: FileHandle | undefined;
    let partPath = '';
    let size = 0;
    const hash = createHash('sha256');
    let failure: string | undefined;

    const finish = async (status: 'succeed' | 'failed', msg: string) => {
      await file?.close().catch(() => {});
      file = undefined;
      let name = msg;
      if (status === 'succeed' && token) {
        name = token;
        await rename(partPath, path.join(deps.results.dir, token));
      } else if (partPath) {
        await rm(partPath, { force: true });
      }
      if (token) {
        deps.results.record({
          token,
          status,
          msg: name,
          data_type: '5100',
          size,
          sha256: status === 'succeed' ? hash.digest('hex') : '',
          at: Math.floor(Date.now() / 1000),
        });
        deps.taskResults?.report({
          agentId: deps.agentOn?.(call.stream.session) ?? '',
          dataType: 5100,
          fields: { token, status, msg: name },
        });
      }
      deps.metrics.uploads.inc({ result: status });
      log.info({ token, status, size, peer: call.peer }, 'upload finished');
      const response = grpc.UploadResponse.encode({
        Status:
          status === 'succeed'
            ? grpc.UploadResponse.StatusCode.SUCCESS
            : grpc.UploadResponse.StatusCode.FAILED,
      }).finish();
      call.write(response);
      call.end(Status.OK);
    };

    call.onClose((end) => {
      if (end.cancelled && file) {
        void file.close().catch(() => {});
        void rm(partPath, { force: true });
        deps.metrics.uploads.inc({ result: 'cancelled' });
      }
    });

    call.read(
      async (message) => {
        if (failure) return; // drain the rest of a failed upload without storing it
        let req: grpc.UploadRequest;
        try {
          req = grpc.UploadRequest.decode(message);
        } catch (err) {
          throw new GrpcError(Status.INTERNAL, 'grpc: failed to unmarshal the received message', {
            cause: err,
          });
        }
        if (token === undefined) {
          if (!TOKEN_PATTERN.test(req.Token)) {
            throw new GrpcError(Status.INVALID_ARGUMENT, 'upload token missing or not a safe file name');
          }
          token = req.Token;
          partPath = path.join(deps.results.dir, `${token}.part`);
          file = await open(partPath, 'w', 0o600);
        }
        size += req.Data.length;
        if (size > deps.maxBytes) {
          failure = `file larger than the upload limit of ${deps.maxBytes} bytes`;
          return;
        }
        hash.update(req.Data);
        await file!.write(req.Data);
      },
      () => {
        if (token === undefined) {
          call.end(Status.INVALID_ARGUMENT, 'empty upload');
          return;
        }
        finish(failure ? 'failed' : 'succeed', failure ?? '').catch((err: unknown) => {
          log.error({ err, token }, 'upload finish failed');
          call.fail(new GrpcError(Status.INTERNAL, 'could not store the upload'));
        });
      },
    );
  };
}
