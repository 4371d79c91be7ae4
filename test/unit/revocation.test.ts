/**
 * platform/pki/revocation.ts: the gateway checks a CRL itself only when it is the CA's own, signed
 * by it; anything else stays with OpenSSL (undefined).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCa, createClientCert, createCrl, serialOf } from '../../platform/pki/certs.js';
import { gatewayRevocation } from '../../platform/pki/revocation.js';

test('a CRL signed by the one CA is checked by the gateway: listed serials refused, others pass', async () => {
  const ca = await createCa({ commonName: 'fleet CA' });
  const agent = await createClientCert(ca, { identity: 'a1' });
  const list = gatewayRevocation(ca.cert, await createCrl(ca, [serialOf(agent.cert)]));
  assert.ok(list);
  const now = Date.now();
  assert.equal(
    list.refusal(now, () => serialOf(agent.cert)),
    'CERT_REVOKED',
  );
  assert.equal(
    list.refusal(now, () => 'abcd'),
    undefined,
  );
  const empty = gatewayRevocation(ca.cert, await createCrl(ca, []));
  let asked = false;
  assert.equal(
    empty?.refusal(now, () => {
      asked = true;
      return '';
    }),
    undefined,
  );
  assert.equal(asked, false, 'no serial is read when the CRL lists none');
});

test('a CRL the CA did not sign, with the same issuer name, is left to OpenSSL (which refuses everyone)', async () => {
  const ca = await createCa({ commonName: 'fleet CA' });
  const impostor = await createCa({ commonName: 'fleet CA' });
  assert.equal(gatewayRevocation(ca.cert, await createCrl(impostor, [])), undefined);
});

test('two CAs, two CRLs, or a CRL that does not parse are left to OpenSSL', async () => {
  const ca = await createCa();
  const other = await createCa({ commonName: 'other' });
  const crl = await createCrl(ca, []);
  assert.equal(gatewayRevocation(`${ca.cert}${other.cert}`, crl), undefined);
  assert.equal(gatewayRevocation(ca.cert, `${crl}${crl}`), undefined);
  assert.equal(
    gatewayRevocation(ca.cert, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'),
    undefined,
  );
  assert.ok(gatewayRevocation(ca.cert, crl));
});
