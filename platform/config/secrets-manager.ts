/**
 * Secrets for the Lambda functions, read from AWS Secrets Manager once per cold start.
 *
 * A function's environment is part of its Terraform state and of `GetFunctionConfiguration`'s
 * answer, so the AK/SK pairs and the manager's token secret are never put there. The function
 * gets the secret's ARN instead, and every bundle of scripts/build-lambda.mjs starts by calling
 * `loadSecretEnvironment(process.env)`: each variable on the left names a secret whose
 * SecretString becomes the variable on the right before the handler reads its configuration.
 *
 *   FLEETGATE_AKSK_SECRET_ARN     -> FLEETGATE_AKSK            (ak:sk[,ak:sk...])
 *   FLEETGATE_MANAGER_SECRET_ARN  -> FLEETGATE_MANAGER_SECRET  (>= 32 random bytes)
 *
 * Setting both a variable and its `_SECRET_ARN` is refused (which one would win is a guess), as
 * is a secret without a string value (created by Terraform but never filled: docs/deploy.md,
 * step 4). The SDK's own configuration applies: AWS_REGION, the function's role, and
 * AWS_ENDPOINT_URL_SECRETS_MANAGER (a VPC endpoint, or a fake in tests).
 * The gateway containers do not use this: ECS injects their secrets itself (`secrets` in the
 * task definition).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** `<variable naming the secret>` -> `<variable that gets its value>`. */
export const SECRET_VARIABLES: Readonly<Record<string, string>> = {
  FLEETGATE_AKSK_SECRET_ARN: 'FLEETGATE_AKSK',
  FLEETGATE_MANAGER_SECRET_ARN: 'FLEETGATE_MANAGER_SECRET',
};

/** The part of the SDK client used here. */
export interface SecretReader {
  send(command: GetSecretValueCommand): Promise<{ SecretString?: string | undefined }>;
}

export class SecretEnvironmentError extends Error {
  override name = 'SecretEnvironmentError';
}

/**
 * Fills each target variable of SECRET_VARIABLES from the secret its ARN variable names.
 * Returns the names it filled. Throws a SecretEnvironmentError when a secret cannot be read.
 */
export async function loadSecretEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  reader?: SecretReader,
): Promise<string[]> {
  const wanted = Object.entries(SECRET_VARIABLES).flatMap(([from, name]) => {
    const arn = env[from]?.trim();
    return arn ? [[from, name, arn] as const] : [];
  });
  if (wanted.length === 0) return [];
  for (const [from, name] of wanted) {
    if (env[name]?.trim()) throw new SecretEnvironmentError(`${name} and ${from} are both set: set only one`);
  }
  const own = reader ? undefined : new SecretsManagerClient({});
  const client: SecretReader = reader ?? (own as SecretReader);
  try {
    const values = await Promise.all(
      wanted.map(async ([from, name, arn]) => {
        let value: string | undefined;
        try {
          value = (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
        } catch (err) {
          throw new SecretEnvironmentError(`${from}: cannot read ${arn}: ${(err as Error).message}`);
        }
        if (!value?.trim()) {
          throw new SecretEnvironmentError(
            `${from}: ${arn} has no string value (put one with aws secretsmanager put-secret-value)`,
          );
        }
        return [name, value.trim()] as const;
      }),
    );
    for (const [name, value] of values) env[name] = value;
    return values.map(([name]) => name);
  } finally {
    own?.destroy();
  }
}
