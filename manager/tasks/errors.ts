/** Typed errors of the task engine; routes/tasks.ts maps them to Elkeid codes and HTTP statuses. */

/** Bad input: a 400 (Elkeid code 2, `param invalid`). */
export class TaskValidationError extends Error {
  override readonly name = 'TaskValidationError';
}

/** The target resolved to more agents than the guard allows without confirmation (hardening §5 test 31). */
export class FanoutConfirmError extends TaskValidationError {
  readonly count: number;
  constructor(count: number) {
    super(`confirm_fanout must equal ${count}`);
    this.count = count;
  }
}

/** No such task (or quick-task agent): a 404 / Elkeid code 2. */
export class TaskNotFoundError extends Error {
  override readonly name = 'TaskNotFoundError';
}

/** The task's state forbids the operation (run a cancelled or finished task): a 409 / code 3. */
export class TaskStateError extends Error {
  override readonly name = 'TaskStateError';
}
