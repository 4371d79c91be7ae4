import { type HttpResponse, json } from './types.js';

/**
 * Elkeid's response envelope `{"code":int,"msg":string,"data":any}`. Elkeid answers every
 * outcome with HTTP 200 and puts the outcome in `code`; its clients read only the envelope.
 */
export const EnvelopeCode = {
  Success: 0,
  AuthFailed: 1,
  ParamInvalid: 2,
  UnknownError: 3,
} as const;
export type EnvelopeCodeValue = (typeof EnvelopeCode)[keyof typeof EnvelopeCode];

const messages: Record<EnvelopeCodeValue, string> = {
  0: 'success',
  1: 'auth failed',
  2: 'param invalid',
  3: 'some errors occurred',
};

export function ok(data: unknown): HttpResponse {
  return json(200, { code: EnvelopeCode.Success, msg: messages[0], data: data === undefined ? null : data });
}

export function fail(code: 1 | 2 | 3, data?: unknown, msg?: string): HttpResponse {
  return json(200, { code, msg: msg ?? messages[code], data: data === undefined ? null : data });
}
