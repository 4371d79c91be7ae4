/** The chunks' member lists (immutable once written), cached by task and chunk. */
import type { TaskRepo } from '../context.js';
import type { ChunkHead, ChunkMembers } from '../model.js';
import { getMembers } from '../store/chunk-store.js';

/** Entries kept; the oldest goes first past it. */
const MAX_ENTRIES = 20_000;

export class MembersCache {
  readonly #repo: TaskRepo;
  readonly #entries = new Map<string, ChunkMembers>();

  constructor(repo: TaskRepo) {
    this.#repo = repo;
  }

  async of(taskId: string, head: Pick<ChunkHead, 'chunkId'>): Promise<ChunkMembers> {
    const key = `${taskId}/${head.chunkId}`;
    const hit = this.#entries.get(key);
    if (hit) return hit;
    const value = await getMembers(this.#repo, taskId, Number(head.chunkId.slice(2)));
    this.#entries.set(key, value);
    if (this.#entries.size > MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
    return value;
  }
}
