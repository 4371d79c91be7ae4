import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { createVerifier, parseAkskList, signRequest } from '../../platform/http/aksk.js';
import type { HttpRequest } from '../../platform/http/types.js';

const TS = 1_700_000_000;
const at = (seconds: number) => () => seconds * 1000;

const REGISTER_BODY = '{"name":"hids_svr_grpc","ip":"10.0.0.1","port":6751,"weight":0,"extra":null}';
const V1 = {
  method: 'POST',
  path: '/registry/register',
  query: '',
  body: REGISTER_BODY,
  ak: '7abyaiyf56jowghp',
  sk: 'L3E56PpoCoKktzUSlZc1zQdq1x2n9ign',
  signature: '0770ba69ed1894d14ad21b76a96821c263f67035784168603fb6567ebab299cc',
};
const V2 = {
  method: 'GET',
  path: '/conn/stat',
  query: '',
  body: '',
  ak: 'ekwjsyj2iucfotiy',
  sk: 'kqxxfphfxj6ud9pon1zyf2oyqrda3xdt',
  signature: '91b17d64d53c5912643df15911fb781c9fccd2c53c0113efa694740db53ac586',
};

interface Req {
  method: string;
  path: string;
  query?: string;
  body?: string;
  headers: Record<string, string>;
}

/** Header names lower-cased, as adapters hand them over. */
function request(r: Req): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
  return {
    method: r.method,
    path: r.path,
    query: r.query ?? '',
    headers,
    body: Buffer.from(r.body ?? ''),
    remoteAddress: '127.0.0.1',
  };
}

function signed(
  v: { method: string; path: string; query: string; body: string; ak: string; sk: string },
  seconds = TS,
): HttpRequest {
  const headers = signRequest({ ...v, now: at(seconds) });
  return request({ method: v.method, path: v.path, query: v.query, body: v.body, headers });
}

function keysOf(...vs: { ak: string; sk: string }[]): Map<string, string> {
  return new Map(vs.map((v) => [v.ak, v.sk]));
}

describe('signRequest', () => {
  test('vector 1: POST /registry/register with a JSON body', () => {
    assert.equal(
      createHash('sha256').update(REGISTER_BODY).digest('hex'),
      '9755e09f1077fb1630ae32fd1d0fadbd20a4de509da7d9aec523e313364e4222',
    );
    assert.deepEqual(signRequest({ ...V1, now: at(TS) }), {
      AccessKey: V1.ak,
      TimeStamp: '1700000000',
      Signature: V1.signature,
    });
  });

  test('vector 2: GET /conn/stat with an empty body', () => {
    assert.equal(signRequest({ ...V2, now: at(TS) }).Signature, V2.signature);
  });

  test('a Buffer body signs like the same string', () => {
    const headers = signRequest({ ...V1, body: Buffer.from(REGISTER_BODY), now: at(TS) });
    assert.equal(headers.Signature, V1.signature);
  });

  test('TimeStamp is whole seconds of the clock', () => {
    assert.equal(signRequest({ ...V2, now: () => TS * 1000 + 999 }).TimeStamp, String(TS));
  });

  test('/command/ and /command sign the same; /command// does not', () => {
    const base = { method: 'POST', query: '', body: '{}', ak: V2.ak, sk: V2.sk, now: at(TS) };
    const a = signRequest({ ...base, path: '/command' }).Signature;
    assert.equal(signRequest({ ...base, path: '/command/' }).Signature, a);
    assert.equal(signRequest({ ...base, path: ' /command/ ' }).Signature, a);
    assert.notEqual(signRequest({ ...base, path: '/command//' }).Signature, a);
  });

  test('the query, method and body are all covered', () => {
    const a = signRequest({ ...V2, now: at(TS) }).Signature;
    assert.notEqual(signRequest({ ...V2, query: 'a=1', now: at(TS) }).Signature, a);
    assert.notEqual(signRequest({ ...V2, method: 'POST', now: at(TS) }).Signature, a);
    assert.notEqual(signRequest({ ...V2, body: 'x', now: at(TS) }).Signature, a);
  });
});

describe('createVerifier', () => {
  test('accepts both vectors', () => {
    const verifier = createVerifier({ keys: keysOf(V1, V2), now: at(TS) });
    assert.deepEqual(verifier.verify(signed(V1)), { ok: true, ak: V1.ak });
    assert.deepEqual(verifier.verify(signed(V2)), { ok: true, ak: V2.ak });
  });

  test('accepts the vector headers as literally given', () => {
    const verifier = createVerifier({ keys: keysOf(V1), now: at(TS) });
    const req = request({
      method: 'POST',
      path: '/registry/register',
      body: REGISTER_BODY,
      headers: { AccessKey: V1.ak, TimeStamp: '1700000000', Signature: V1.signature },
    });
    assert.deepEqual(verifier.verify(req), { ok: true, ak: V1.ak });
  });

  test('a route declared /command verifies a request signed for /command/', () => {
    const verifier = createVerifier({ keys: keysOf(V2), now: at(TS) });
    const headers = signRequest({ ...V2, method: 'POST', path: '/command/', body: '{}', now: at(TS) });
    assert.deepEqual(verifier.verify(request({ method: 'POST', path: '/command', body: '{}', headers })), {
      ok: true,
      ak: V2.ak,
    });
  });

  describe('failure reasons', () => {
    const verifier = () => createVerifier({ keys: keysOf(V1, V2), now: at(TS) });
    const full = () => signRequest({ ...V2, now: at(TS) });
    const without = (name: string) => {
      const headers = full();
      delete headers[name];
      return request({ method: V2.method, path: V2.path, headers });
    };

    test('each missing header is named', () => {
      assert.deepEqual(verifier().verify(without('AccessKey')), {
        ok: false,
        reason: 'header missed: AccessKey',
      });
      assert.deepEqual(verifier().verify(without('Signature')), {
        ok: false,
        reason: 'header missed: Signature',
      });
      assert.deepEqual(verifier().verify(without('TimeStamp')), {
        ok: false,
        reason: 'header missed: TimeStamp',
      });
    });

    test('an empty header counts as missing', () => {
      const req = request({ method: V2.method, path: V2.path, headers: { ...full(), AccessKey: '' } });
      assert.deepEqual(verifier().verify(req), { ok: false, reason: 'header missed: AccessKey' });
    });

    test('a TimeStamp that is not an integer', () => {
      for (const [value, detail] of [
        ['abc', 'strconv.ParseInt: parsing "abc": invalid syntax'],
        ['1700000000.5', 'strconv.ParseInt: parsing "1700000000.5": invalid syntax'],
        ['0x10', 'strconv.ParseInt: parsing "0x10": invalid syntax'],
        ['99999999999999999999', 'strconv.ParseInt: parsing "99999999999999999999": value out of range'],
      ] as const) {
        const req = request({ method: V2.method, path: V2.path, headers: { ...full(), TimeStamp: value } });
        assert.deepEqual(verifier().verify(req), { ok: false, reason: `TimeStamp Error ${detail}` }, value);
      }
    });

    test('a TimeStamp outside the window', () => {
      const req = signed(V2, TS - 3600);
      assert.deepEqual(verifier().verify(req), { ok: false, reason: 'timestamp error' });
    });

    test('an unknown AK', () => {
      const req = signed({ ...V2, ak: 'nosuchkey' });
      assert.deepEqual(verifier().verify(req), { ok: false, reason: 'User not exist' });
    });

    test('a wrong SK, a tampered body, query, path or method', () => {
      const cases: HttpRequest[] = [
        signed({ ...V2, sk: 'not-the-secret' }),
        { ...signed(V1), body: Buffer.from(REGISTER_BODY.replace('6751', '6752')) },
        { ...signed(V2), query: 'x=1' },
        { ...signed(V2), path: '/conn/list' },
        { ...signed(V2), method: 'POST' },
      ];
      for (const req of cases) {
        assert.deepEqual(verifier().verify(req), { ok: false, reason: 'signature error' });
      }
    });

    test('a signature of the wrong length or case is refused without throwing', () => {
      const headers = full();
      for (const sig of ['00', `${headers.Signature}00`, headers.Signature!.toUpperCase(), 'é'.repeat(32)]) {
        const req = request({ method: V2.method, path: V2.path, headers: { ...headers, Signature: sig } });
        assert.deepEqual(verifier().verify(req), { ok: false, reason: 'signature error' }, sig);
      }
    });
  });

  describe('time window', () => {
    const verify = (nowSeconds: number) =>
      createVerifier({ keys: keysOf(V2), now: at(nowSeconds) }).verify(signed(V2, TS));

    test('59 s either way is accepted', () => {
      assert.equal(verify(TS + 59).ok, true);
      assert.equal(verify(TS - 59).ok, true);
    });

    test('60 s either way is refused', () => {
      assert.deepEqual(verify(TS + 60), { ok: false, reason: 'timestamp error' });
      assert.deepEqual(verify(TS - 60), { ok: false, reason: 'timestamp error' });
    });

    test('the clock counts in whole seconds, like Go time.Now().Unix()', () => {
      const verifier = createVerifier({ keys: keysOf(V2), now: () => (TS + 59) * 1000 + 999 });
      assert.equal(verifier.verify(signed(V2, TS)).ok, true);
    });

    test('windowSeconds is configurable', () => {
      const verifier = createVerifier({ keys: keysOf(V2), windowSeconds: 5, now: at(TS + 5) });
      assert.deepEqual(verifier.verify(signed(V2, TS)), { ok: false, reason: 'timestamp error' });
    });
  });

  describe('replay', () => {
    test('an accepted signature is refused the second time', () => {
      const verifier = createVerifier({ keys: keysOf(V2), now: at(TS) });
      const req = signed(V2);
      assert.equal(verifier.verify(req).ok, true);
      assert.deepEqual(verifier.verify(req), { ok: false, reason: 'signature replayed' });
      assert.deepEqual(verifier.verify(signed(V2)), { ok: false, reason: 'signature replayed' });
    });

    test('a refused (badly signed) request does not consume the signature', () => {
      const verifier = createVerifier({ keys: keysOf(V2), now: at(TS) });
      const good = signed(V2);
      assert.equal(verifier.verify({ ...good, query: 'x=1' }).ok, false);
      assert.equal(verifier.verify(good).ok, true);
    });

    test('the same request signed in another second is not a replay', () => {
      let now = TS;
      const verifier = createVerifier({ keys: keysOf(V2), now: () => now * 1000 });
      assert.equal(verifier.verify(signed(V2, TS)).ok, true);
      now = TS + 1;
      assert.equal(verifier.verify(signed(V2, TS + 1)).ok, true);
    });

    test('the cache is bounded: the oldest signature is forgotten first', () => {
      const verifier = createVerifier({ keys: keysOf(V2), now: at(TS), replayCacheSize: 2 });
      const reqs = ['/a', '/b', '/c'].map((path) => signed({ ...V2, path }));
      for (const req of reqs) assert.equal(verifier.verify(req).ok, true);
      assert.equal(verifier.verify(reqs[2]!).ok, false);
      assert.equal(verifier.verify(reqs[1]!).ok, false);
      // Evicted by the third: the bound trades this replay for bounded memory.
      assert.equal(verifier.verify(reqs[0]!).ok, true);
    });

    test('a signature stays refused for as long as its TimeStamp is inside the window', () => {
      let now = TS;
      const verifier = createVerifier({ keys: keysOf(V2), now: () => now * 1000 });
      // Signed by a clock 50 s ahead: valid until TS + 110, past the 60 s after acceptance.
      const req = signed(V2, TS + 50);
      assert.equal(verifier.verify(req).ok, true);
      now = TS + 109;
      assert.deepEqual(verifier.verify(req), { ok: false, reason: 'signature replayed' });
      now = TS + 110;
      assert.deepEqual(verifier.verify(req), { ok: false, reason: 'timestamp error' });
    });
  });

  describe('AK case', () => {
    test('configured AKs are matched case-insensitively and reported lower-cased', () => {
      const verifier = createVerifier({ keys: new Map([['EkwJsyj2iucfotiy', V2.sk]]), now: at(TS) });
      assert.deepEqual(verifier.verify(signed(V2)), { ok: true, ak: V2.ak });
    });

    test('an upper-case AK header is accepted when signed as sent', () => {
      const verifier = createVerifier({ keys: keysOf(V2), now: at(TS) });
      assert.deepEqual(verifier.verify(signed({ ...V2, ak: V2.ak.toUpperCase() })), { ok: true, ak: V2.ak });
    });
  });

  test('rejects nonsensical options', () => {
    assert.throws(() => createVerifier({ keys: new Map(), windowSeconds: 0 }), /windowSeconds/);
    assert.throws(() => createVerifier({ keys: new Map(), replayCacheSize: 0 }), /replayCacheSize/);
  });
});

describe('parseAkskList', () => {
  test('parses pairs, trims whitespace and lower-cases AKs', () => {
    assert.deepEqual(
      parseAkskList(' AK1:sk1 , ak2:Sk2:with-colon,'),
      new Map([
        ['ak1', 'sk1'],
        ['ak2', 'Sk2:with-colon'],
      ]),
    );
  });

  test('an empty list is empty', () => {
    assert.equal(parseAkskList('').size, 0);
  });

  test('a malformed pair throws without echoing the secret', () => {
    for (const bad of [
      'ak1:supersecret,ak2',
      'ak1:supersecret,:sk',
      'ak1:supersecret,ak2:',
      'ak1:supersecret,,ak2:x',
    ]) {
      assert.throws(
        () => parseAkskList(bad),
        (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.match(err.message, /entry \d+ is not of the form "ak:sk"/);
          assert.doesNotMatch(err.message, /supersecret/);
          return true;
        },
        bad,
      );
    }
  });

  test('a repeated AK throws', () => {
    assert.throws(() => parseAkskList('ak:1,AK:2'), /repeats access key "ak"/);
  });
});
