/**
 * Decoding of an Elkeid `Item` (agent `Payload`): `map<string,string> Fields = 1`.
 * Hand-written over protobufjs' Reader into a null-prototype object, so a hostile key such as
 * `__proto__` is only data (docs/hardening.md §6, prototype poisoning).
 */
import protobuf from 'protobufjs/minimal.js';

export type Fields = Record<string, string>;

export function decodeItem(body: Uint8Array): Fields {
  const reader = protobuf.Reader.create(body);
  const out: Fields = Object.create(null);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 !== 1 || (tag & 7) !== 2) {
      reader.skipType(tag & 7);
      continue;
    }
    const end = reader.uint32() + reader.pos;
    if (end > reader.len) throw new RangeError('map entry past end of Item');
    let key = '';
    let value = '';
    while (reader.pos < end) {
      const t = reader.uint32();
      if (t === 0x0a) key = reader.string();
      else if (t === 0x12) value = reader.string();
      else reader.skipType(t & 7);
    }
    out[key] = value;
  }
  return out;
}

/** Encodes fields as an Item, keys in insertion order (used by the simulator and tests). */
export function encodeItem(fields: Readonly<Record<string, string>>): Uint8Array {
  const w = protobuf.Writer.create();
  for (const [k, v] of Object.entries(fields)) {
    w.uint32(0x0a).fork().uint32(0x0a).string(k).uint32(0x12).string(v).ldelim();
  }
  return w.finish();
}
