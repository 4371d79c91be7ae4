import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { buildMqRecords } from '../../workers/mqdata.js';

test('MQData fields follow elkeid-protocol.md §1.1 and the body is the agent bytes', () => {
  const body = encodeItem({ exe: '/bin/sh', argv: 'sh -c id' });
  const raw = grpc.RawData.decode(
    grpc.RawData.encode({
      AgentID: 'a-1',
      IntranetIPv4: ['10.0.0.1', '10.0.0.2'],
      ExtranetIPv4: [],
      IntranetIPv6: ['fd00::1'],
      Hostname: 'h',
      Version: '1.9.1',
      Product: 'elkeid-agent',
      Data: [
        { DataType: 59, Timestamp: 1700000000, Body: body },
        { DataType: 1000, Timestamp: 1700000001, Body: new Uint8Array() },
      ],
    }).finish(),
  );
  const recs = buildMqRecords(raw, 1_700_000_123_999, 'web,prod');
  assert.equal(recs.length, 2);
  const mq = grpc.MQData.decode(recs[0]!.value);
  assert.equal(recs[0]!.key, 'a-1');
  assert.equal(mq.DataType, 59);
  assert.equal(Number(mq.AgentTime), 1700000000);
  assert.deepEqual(Buffer.from(mq.Body), Buffer.from(body));
  assert.equal(mq.IntranetIPv4, '10.0.0.1,10.0.0.2');
  assert.equal(mq.ExtranetIPv4, '');
  assert.equal(mq.IntranetIPv6, 'fd00::1');
  assert.equal(mq.Hostname, 'h');
  assert.equal(mq.Version, '1.9.1');
  assert.equal(mq.Product, 'elkeid-agent');
  assert.equal(Number(mq.SvrTime), 1700000123);
  assert.equal(mq.PSMName, '');
  assert.equal(mq.Tag, 'web,prod');
  // Byte-identical to a canonical proto3 encoding (zero fields omitted, field order ascending),
  // which is what Go's proto.Marshal emits.
  const canonical = grpc.MQData.encode(mq).finish();
  assert.deepEqual(Buffer.from(recs[0]!.value), Buffer.from(canonical));
  assert.deepEqual(
    Buffer.from(recs[1]!.value),
    Buffer.from(grpc.MQData.encode(grpc.MQData.decode(recs[1]!.value)).finish()),
  );
});
