/**
 * Revocation checked by the gateway itself, from the CRL parsed once, instead of by OpenSSL in
 * every handshake.
 *
 * Why: Node gives OpenSSL the CRL with X509_V_FLAG_CRL_CHECK_ALL, so every handshake verifies the
 * CRL's signature twice (for the client certificate and again for the CA) and hashes the whole
 * CRL each time: with an ECDSA P-256 CA, 15–35 % of a new agent session's CPU (docs/capacity.md,
 * "Handshake cost"). The CRL does not change between reloads, so its signature is verified here
 * once per load, and a handshake only looks the peer's serial up in a set.
 *
 * Only for the layout `certs init` makes and Elkeid uses: one self-signed CA in ca.crt and one
 * CRL from it, with no critical extension we would have to understand. Any other layout
 * (intermediates, several CRLs, a CRL that does not verify, unknown algorithms) returns
 * undefined and the CRL goes to OpenSSL as before, which then decides exactly as it always did.
 * What OpenSSL refuses with this layout is refused alike, with the same verdicts: a listed
 * serial (CERT_REVOKED), the CA's own serial listed (every peer, CERT_REVOKED), a CRL past its
 * nextUpdate (every peer, CRL_HAS_EXPIRED) or before its thisUpdate (CRL_NOT_YET_VALID).
 */
import { verify, X509Certificate } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { normalizeSerial } from './certs.js';

/** The parsed CRL of the CA, checked against each verified peer at the end of its handshake. */
export class RevocationList {
  constructor(
    private readonly serials: ReadonlySet<string>,
    private readonly thisUpdateMs: number,
    private readonly nextUpdateMs: number | undefined,
    private readonly caRevoked: boolean,
  ) {}

  /**
   * OpenSSL's verdict for a peer whose chain verified, or undefined when it passes. `serial`
   * (lower-case hex, as Node prints it) is asked only when the CRL lists anything.
   */
  refusal(now: number, serial: () => string): string | undefined {
    if (now < this.thisUpdateMs) return 'CRL_NOT_YET_VALID';
    if (this.nextUpdateMs !== undefined && now > this.nextUpdateMs) return 'CRL_HAS_EXPIRED';
    if (this.caRevoked) return 'CERT_REVOKED';
    if (this.serials.size > 0 && this.serials.has(serial())) return 'CERT_REVOKED';
    return undefined;
  }
}

/** Hash of each signature algorithm we verify ourselves (DER of the OID, hex); null: none (Ed25519). */
const SIGNATURE_HASH: Record<string, string | null> = {
  '2a8648ce3d040302': 'sha256', // ecdsa-with-SHA256
  '2a8648ce3d040303': 'sha384',
  '2a8648ce3d040304': 'sha512',
  '2a864886f70d01010b': 'sha256', // sha256WithRSAEncryption
  '2a864886f70d01010c': 'sha384',
  '2a864886f70d01010d': 'sha512',
  '2b6570': null, // Ed25519
};

/**
 * The gateway's own revocation list for `caPem` and `crlPem`, or undefined when the layout is
 * not the simple one (see the file comment) and OpenSSL must keep checking the CRL.
 */
export function gatewayRevocation(caPem: string, crlPem: string): RevocationList | undefined {
  try {
    return parseRevocation(caPem, crlPem);
  } catch {
    return undefined; // whatever we cannot read is OpenSSL's to judge, as before
  }
}

function parseRevocation(caPem: string, crlPem: string): RevocationList | undefined {
  const caBlocks = caPem.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
  const crlBlocks = crlPem.match(/-----BEGIN X509 CRL-----/g) ?? [];
  if (caBlocks.length !== 1 || crlBlocks.length !== 1) return undefined;
  const ca = new X509Certificate(caPem);
  if (!ca.checkIssued(ca)) return undefined;
  const crl = new x509.X509Crl(crlPem);
  const critical =
    crl.extensions.some((e) => e.critical) || crl.entries.some((e) => e.extensions.some((x) => x.critical));
  if (critical || crl.issuer !== new x509.X509Certificate(caPem).subject) return undefined;
  if (!signedBy(Buffer.from(crl.rawData), ca)) return undefined;
  const serials = new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber)));
  return new RevocationList(
    serials,
    crl.thisUpdate.getTime(),
    crl.nextUpdate?.getTime(),
    serials.has(normalizeSerial(ca.serialNumber)),
  );
}

/** A DER element at `at`: where its content starts and where it ends. */
function derElement(der: Buffer, at: number): { content: number; end: number } {
  let length = der[at + 1]!;
  let content = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[content++]!;
  }
  return { content, end: content + length };
}

/** Whether the CA's key verifies the CRL's signature (CertificateList: tbs, algorithm, BIT STRING). */
function signedBy(der: Buffer, ca: X509Certificate): boolean {
  try {
    const list = derElement(der, 0);
    const tbs = derElement(der, list.content);
    const algorithm = derElement(der, tbs.end);
    const oid = derElement(der, algorithm.content);
    const hash = SIGNATURE_HASH[der.subarray(oid.content, oid.end).toString('hex')];
    if (hash === undefined) return false;
    const signature = derElement(der, algorithm.end);
    return verify(
      hash,
      der.subarray(list.content, tbs.end),
      ca.publicKey,
      der.subarray(signature.content + 1, signature.end), // past the unused-bits byte
    );
  } catch {
    return false;
  }
}
