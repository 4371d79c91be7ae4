/**
 * Keeps the tags of a gateway's connected agents current without a store read per record or
 * per agent: every change of a tag's membership recounts the tag and rewrites its
 * `fleet#tagcount` item with a new `updatedAtMs` (tags.ts). The watch Queries that one scope
 * (an item per tag), and for each tag whose item changed or vanished reads the tag's members
 * once and applies them to every tracked agent. MQData.Tag then lags a tag change by at most
 * one poll interval plus the reads (docs/manager.md, "Tags in records").
 */
import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { FLEET_SCOPE, queryScope } from '../store/fleet-items.js';
import { tableName } from '../store/schema.js';

/** What the watch updates: an agent's sorted tag list. */
export interface TaggedAgent {
  readonly agentId: string;
  tags: string[];
}

export interface TagWatch {
  /**
   * Reads the tag revisions; for changed tags, their members, applied to `agents`. The first
   * call only records the revisions (agents read their own tags when they connect).
   */
  poll(agents: () => Iterable<TaggedAgent>): Promise<number>;
}

export function createTagWatch(doc: DynamoDBDocumentClient, tablePrefix: string): TagWatch {
  const tagsTable = tableName(tablePrefix, 'tags');
  let known: Map<string, number> | undefined;

  async function members(tag: string): Promise<Set<string>> {
    const out = new Set<string>();
    let start: Record<string, unknown> | undefined;
    do {
      const page = await doc.send(
        new QueryCommand({
          TableName: tagsTable,
          KeyConditionExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'tag', '#a': 'agentId' },
          ExpressionAttributeValues: { ':t': tag },
          ProjectionExpression: '#a',
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const i of page.Items ?? []) out.add(String(i.agentId));
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    return out;
  }

  return {
    async poll(agents) {
      const items = await queryScope(doc, tablePrefix, FLEET_SCOPE.tagCount, { consistent: true });
      const now = new Map(items.map((i) => [String(i.name), Number(i.updatedAtMs ?? 0)] as const));
      const previous = known;
      known = now;
      if (!previous) return 0;
      const changed = new Set<string>();
      for (const [tag, at] of now) if (previous.get(tag) !== at) changed.add(tag);
      for (const tag of previous.keys()) if (!now.has(tag)) changed.add(tag);
      for (const tag of changed) {
        const holders = now.has(tag) ? await members(tag) : new Set<string>();
        for (const a of agents()) {
          const has = a.tags.includes(tag);
          if (holders.has(a.agentId) && !has) a.tags = [...a.tags, tag].sort();
          else if (!holders.has(a.agentId) && has) a.tags = a.tags.filter((x) => x !== tag);
        }
      }
      return changed.size;
    },
  };
}
