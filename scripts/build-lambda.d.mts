export interface LambdaDef {
  /** Source module (repository-relative) that exports the handler. */
  source: string;
  export: string;
  /** The zip also holds the built operator console under dist/console. */
  console?: boolean;
}
export declare const LAMBDAS: Record<string, LambdaDef>;
/** `discovery/lambda.ts` -> `discovery/lambda.handler`. */
export declare function handlerSetting(fn: LambdaDef): string;
/** The bundle's entry module: Secrets Manager first (platform/config/secrets-manager.ts), then the handler. */
export declare function entrySource(fn: LambdaDef): string;
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
  /** The bundled source files (repository-relative). */
  inputFiles: string[];
}
export declare function buildLambda(name: string, outRoot: string): Promise<BuiltLambda>;
