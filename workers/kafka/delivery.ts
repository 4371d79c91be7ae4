/** The producer's errors and its deadline helper (producer.ts explains the delivery timeout). */

/** `send` did not settle within `deliveryTimeoutMs`. */
export class KafkaDeliveryTimeoutError extends Error {
  override name = 'KafkaDeliveryTimeoutError';
}

/** `send` after `disconnect`. */
export class ProducerClosedError extends Error {
  override name = 'ProducerClosedError';
}

/** `p`, or a KafkaDeliveryTimeoutError naming `what` after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KafkaDeliveryTimeoutError(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
