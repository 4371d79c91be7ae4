/** The DNS names and addresses a server certificate carries (for the start banner). */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function serverCertificateNames(file: string): string[] {
  try {
    const san = new X509Certificate(readFileSync(file)).subjectAltName ?? '';
    return san
      .split(',')
      .map((s) => s.trim().replace(/^(DNS|IP Address):/, ''))
      .filter(Boolean);
  } catch {
    return [];
  }
}
