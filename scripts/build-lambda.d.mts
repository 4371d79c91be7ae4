export interface LambdaDef {
  /** Source module (repository-relative) that exports the handler. */
  source: string;
  export: string;
}
export declare const LAMBDAS: Record<string, LambdaDef>;
/** `gateway/discovery/lambda.ts` -> `gateway/discovery/lambda.handler`. */
export declare function handlerSetting(fn: LambdaDef): string;
export interface BuiltLambda {
  name: string;
  handler: string;
  /** Path of the bundle inside the zip (and under dir). */
  entry: string;
  dir: string;
  zip: string;
  bundleBytes: number;
  zipBytes: number;
  inputs: number;
}
export declare function buildLambda(name: string, outRoot: string): Promise<BuiltLambda>;
