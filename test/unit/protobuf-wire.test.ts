/**
 * The shared protobuf field walk (workers/protobuf-wire.ts): where its strict reading (the
 * gateway's RawData gate) and its lenient one (the worker's reader) differ, where they agree, and
 * that every value is bounds-checked in both. The behaviour of each user against protobufjs is
 * tested in raw-scan.test.ts and mqdata.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  lenStart,
  readTag,
  skipVarint,
  tagEnd,
  valueEnd,
  varint32,
  WIRE_FIXED32,
  WIRE_FIXED64,
  WIRE_LEN,
  WIRE_VARINT,
  WireFormatError,
} from '../../workers/protobuf-wire.js';

const bytes = (...b: number[]) => Uint8Array.from(b);

test('readTag reads a tag and leaves the position after it in tagEnd', () => {
  // field 1, LEN (0x0a); then field 300, VARINT (300 << 3 = 2400 = 0xe0 0x12)
  const buf = bytes(0x0a, 0xe0, 0x12);
  assert.equal(readTag(buf, 0, buf.length), (1 << 3) | WIRE_LEN);
  assert.equal(tagEnd, 1);
  assert.equal(readTag(buf, 1, buf.length), (300 << 3) | WIRE_VARINT);
  assert.equal(tagEnd, 3);
});

test('a tag past 32 bits: the strict walk refuses it, the lenient one keeps its low 32 bits', () => {
  // five bytes whose fifth is 0x10 (> 15): bit 32 set
  const buf = bytes(0x8a, 0x80, 0x80, 0x80, 0x10);
  assert.throws(() => readTag(buf, 0, buf.length), WireFormatError);
  assert.equal(skipVarint(buf, 0, buf.length), 5);
  assert.equal(varint32(buf, 0), 0x0a);
  // a six-byte varint: protobufjs reads tags in at most five
  const six = bytes(0x8a, 0x80, 0x80, 0x80, 0x80, 0x00);
  assert.throws(() => readTag(six, 0, six.length), WireFormatError);
  assert.equal(skipVarint(six, 0, six.length), 6);
});

test('a length of six bytes: the strict walk refuses it, the lenient one reads it', () => {
  // LEN value of length 1 written in six bytes, then its one byte
  const buf = bytes(0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x7f);
  assert.throws(() => valueEnd(buf, 0, buf.length, WIRE_LEN, true), WireFormatError);
  assert.equal(valueEnd(buf, 0, buf.length, WIRE_LEN, false), 7);
  assert.equal(lenStart, 6);
});

test('valueEnd: the end of each wire type and where a LEN value starts, in both walks', () => {
  for (const strict of [true, false]) {
    assert.equal(valueEnd(bytes(0xac, 0x02, 9), 0, 3, WIRE_VARINT, strict), 2);
    assert.equal(valueEnd(new Uint8Array(8), 0, 8, WIRE_FIXED64, strict), 8);
    assert.equal(valueEnd(new Uint8Array(4), 0, 4, WIRE_FIXED32, strict), 4);
    assert.equal(valueEnd(bytes(0x02, 0x61, 0x62), 0, 3, WIRE_LEN, strict), 3);
    assert.equal(lenStart, 1);
  }
});

test('nothing is read past the end: truncated values and lengths past the end throw in both walks', () => {
  for (const strict of [true, false]) {
    assert.throws(() => valueEnd(bytes(0x80, 0x80), 0, 2, WIRE_VARINT, strict), WireFormatError);
    assert.throws(() => valueEnd(new Uint8Array(7), 0, 7, WIRE_FIXED64, strict), WireFormatError);
    assert.throws(() => valueEnd(new Uint8Array(3), 0, 3, WIRE_FIXED32, strict), WireFormatError);
    assert.throws(() => valueEnd(bytes(0x03, 0x61, 0x62), 0, 3, WIRE_LEN, strict), WireFormatError);
    // `end` bounds the walk, not the buffer: a nested message ends before its parent does
    assert.throws(() => valueEnd(bytes(0x02, 0x61, 0x62), 0, 2, WIRE_LEN, strict), WireFormatError);
    assert.throws(() => valueEnd(bytes(0x80), 0, 1, WIRE_LEN, strict), WireFormatError);
  }
  assert.throws(() => readTag(bytes(0x80, 0x80), 0, 2), WireFormatError);
  assert.throws(() => skipVarint(new Uint8Array(11).fill(0x80), 0, 11), WireFormatError);
});

test('groups and the invalid wire types 6 and 7 are refused in both walks', () => {
  for (const strict of [true, false]) {
    for (const wire of [3, 4, 6, 7]) {
      assert.throws(() => valueEnd(new Uint8Array(8), 0, 8, wire, strict), /unsupported wire type/);
    }
  }
});
