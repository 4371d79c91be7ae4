/**
 * platform/config/secrets-manager.ts: the Lambda functions' AK/SK pairs and manager secret come
 * from Secrets Manager at cold start (their ARNs in the environment, never the values), read with
 * the real SDK client from a local GetSecretValue stand-in.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadSecretEnvironment, SecretEnvironmentError } from '../../platform/config/secrets-manager.js';
import { type FakeSecretsManager, startFakeSecretsManager } from '../helpers/fake-secrets-manager.js';

const AKSK_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleetgate/aksk-AbCdEf';
const MANAGER_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleetgate/manager-GhIjKl';
const EMPTY_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleetgate/empty-MnOpQr';

let sm: FakeSecretsManager;
const saved = { ...process.env };

before(async () => {
  sm = await startFakeSecretsManager({
    [AKSK_ARN]: 'abcdef0123456789:s3cr3tSKvalue0123456789abcd\n',
    [MANAGER_ARN]: 'Zq3v9X1kP0wR7tY2uI8oL4aS6dF5gH3jK',
    [EMPTY_ARN]: undefined,
  });
  // What the SDK reads in a function: region, credentials (the role's), the endpoint override.
  process.env.AWS_REGION = 'eu-west-1';
  process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
  process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = sm.endpoint;
});
after(async () => {
  process.env = saved;
  await sm.close();
});

test('fills FLEETGATE_AKSK and FLEETGATE_MANAGER_SECRET from the secrets their ARNs name', async () => {
  const env: NodeJS.ProcessEnv = {
    FLEETGATE_AKSK_SECRET_ARN: AKSK_ARN,
    FLEETGATE_MANAGER_SECRET_ARN: MANAGER_ARN,
  };
  const filled = await loadSecretEnvironment(env);
  assert.deepEqual(filled.sort(), ['FLEETGATE_AKSK', 'FLEETGATE_MANAGER_SECRET']);
  assert.equal(env.FLEETGATE_AKSK, 'abcdef0123456789:s3cr3tSKvalue0123456789abcd');
  assert.equal(env.FLEETGATE_MANAGER_SECRET, 'Zq3v9X1kP0wR7tY2uI8oL4aS6dF5gH3jK');
  const calls = sm.requests.filter((r) => r.secretId === AKSK_ARN || r.secretId === MANAGER_ARN);
  assert.equal(calls.length, 2);
  for (const c of calls) {
    assert.equal(c.target, 'secretsmanager.GetSecretValue');
    assert.match(
      String(c.headers.authorization),
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/secretsmanager\//,
    );
  }
});

test('nothing to read: no call, nothing changed', async () => {
  const before = sm.requests.length;
  const env: NodeJS.ProcessEnv = { FLEETGATE_AKSK: 'a:b' };
  assert.deepEqual(await loadSecretEnvironment(env), []);
  assert.deepEqual(env, { FLEETGATE_AKSK: 'a:b' });
  assert.equal(sm.requests.length, before);
});

test('refused: both a value and its ARN, an unknown secret, a secret without a value', async () => {
  await assert.rejects(
    loadSecretEnvironment({ FLEETGATE_AKSK: 'a:b', FLEETGATE_AKSK_SECRET_ARN: AKSK_ARN }),
    (e: Error) => e instanceof SecretEnvironmentError && /both set/.test(e.message),
  );
  await assert.rejects(
    loadSecretEnvironment({ FLEETGATE_MANAGER_SECRET_ARN: `${MANAGER_ARN}-gone` }),
    (e: Error) =>
      e instanceof SecretEnvironmentError && /cannot read .*can't find the specified secret/.test(e.message),
  );
  await assert.rejects(
    loadSecretEnvironment({ FLEETGATE_AKSK_SECRET_ARN: EMPTY_ARN }),
    (e: Error) => e instanceof SecretEnvironmentError && /FLEETGATE_AKSK_SECRET_ARN/.test(e.message),
  );
});
