/**
 * The chunk lease store over the chunks table: the decisions of ../lease.ts (`canClaim`,
 * `canRenew`) stated as condition expressions on the chunk head.
 */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditional } from '../../../platform/store/errors.js';
import { isConditionFailed, type ManagerStore } from '../../store.js';
import type { LeaseKey, LeaseStore } from '../lease.js';

/** The lease store over the chunks table. */
export function createDynamoLeaseStore(store: ManagerStore, table: string): LeaseStore {
  const Key = (k: LeaseKey) => ({ taskId: k.taskId, chunkId: k.chunkId });
  return {
    async read(k) {
      const r = await store.doc.send(new GetCommand({ TableName: table, Key: Key(k), ConsistentRead: true }));
      if (!r.Item) return undefined;
      const { leaseOwner, leaseUntil } = r.Item;
      return {
        owner: typeof leaseOwner === 'string' ? leaseOwner : undefined,
        until: typeof leaseUntil === 'number' ? leaseUntil : undefined,
        version: Number(r.Item.leaseVersion ?? 0),
      };
    },
    async claim(k, owner, seen, now, leaseMs) {
      try {
        const r = await store.doc.send(
          new UpdateCommand({
            TableName: table,
            Key: Key(k),
            UpdateExpression: 'SET #o = :me, #u = :until, #v = :next',
            ConditionExpression: '#v = :seen AND (attribute_not_exists(#o) OR #u < :now)',
            ExpressionAttributeNames: { '#o': 'leaseOwner', '#u': 'leaseUntil', '#v': 'leaseVersion' },
            ExpressionAttributeValues: {
              ':me': owner,
              ':until': now + leaseMs,
              ':next': seen + 1,
              ':seen': seen,
              ':now': now,
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return { ok: true, version: seen + 1, until: now + leaseMs, item: r.Attributes ?? {} };
      } catch (err) {
        if (isConditionFailed(err)) return { ok: false };
        throw err;
      }
    },
    async renew(k, owner, version, now, leaseMs) {
      return conditional(() =>
        store.doc.send(
          new UpdateCommand({
            TableName: table,
            Key: Key(k),
            UpdateExpression: 'SET #u = :until',
            ConditionExpression: '#o = :me AND #v = :mine',
            ExpressionAttributeNames: { '#o': 'leaseOwner', '#u': 'leaseUntil', '#v': 'leaseVersion' },
            ExpressionAttributeValues: { ':me': owner, ':mine': version, ':until': now + leaseMs },
          }),
        ),
      );
    },
    async release(k, owner, version, set = {}) {
      const names: Record<string, string> = { '#o': 'leaseOwner', '#u': 'leaseUntil', '#v': 'leaseVersion' };
      const values: Record<string, unknown> = { ':me': owner, ':mine': version, ':zero': 0 };
      const sets = ['#u = :zero'];
      let i = 0;
      for (const [attr, value] of Object.entries(set)) {
        if (value === undefined) continue;
        names[`#s${i}`] = attr;
        values[`:s${i}`] = value;
        sets.push(`#s${i} = :s${i}`);
        i++;
      }
      return conditional(() =>
        store.doc.send(
          new UpdateCommand({
            TableName: table,
            Key: Key(k),
            UpdateExpression: `SET ${sets.join(', ')} REMOVE #o`,
            ConditionExpression: '#o = :me AND #v = :mine',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        ),
      );
    },
  };
}
