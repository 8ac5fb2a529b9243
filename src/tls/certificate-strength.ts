import { X509Certificate } from 'node:crypto';

/** Signature algorithms of ≥ 128-bit security, by the hex of their DER OID (RFC 5758, RFC 8017, RFC 8410). */
export const STRONG_SIGNATURE_OIDS: Readonly<Record<string, string>> = Object.freeze({
  '2a8648ce3d040302': 'ecdsa-with-SHA256',
  '2a8648ce3d040303': 'ecdsa-with-SHA384',
  '2a8648ce3d040304': 'ecdsa-with-SHA512',
  '2a864886f70d01010b': 'sha256WithRSAEncryption',
  '2a864886f70d01010c': 'sha384WithRSAEncryption',
  '2a864886f70d01010d': 'sha512WithRSAEncryption',
  '2a864886f70d01010a': 'RSASSA-PSS',
  '2b6570': 'Ed25519',
  '2b6571': 'Ed448',
});

/** Names of weak ones, so a report can say what it found. */
const WEAK_SIGNATURE_OIDS: Readonly<Record<string, string>> = Object.freeze({
  '2a864886f70d010104': 'md5WithRSAEncryption',
  '2a864886f70d010105': 'sha1WithRSAEncryption',
  '2a8648ce3d0401': 'ecdsa-with-SHA1',
});

const STRONG_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/** A certificate expiring sooner than this is worth an operator's attention. */
export const CERTIFICATE_RENEWAL_WARNING_DAYS = 14;

export interface CertificateAssessment {
  /** fail: below 112-bit security, a SHA-1/MD5 signature, or expired; warn: 112-bit (RSA 2048) or expiring soon. */
  status: 'ok' | 'warn' | 'fail';
  /** One line: key, signature, validity, and what is wrong. */
  detail: string;
  /** The key or the signature is below 112-bit security or not an approved algorithm (validity aside). */
  weakCrypto: boolean;
}

/**
 * Whether a TLS certificate meets ASVS 5.0 V11.2.3/V11.4.1/V11.6.1: a key of ≥ 128-bit
 * security (EC P-256 or larger, Ed25519/Ed448, RSA ≥ 3072), a SHA-256+ signature, and
 * inside its validity period. RSA 2048 (112-bit, still what many CAs issue) is a warning,
 * not a failure: NIST SP 800-57 allows it until 2030.
 */
export function assessCertificate(cert: X509Certificate, now: number): CertificateAssessment {
  const problems: Array<{ level: 'warn' | 'fail'; text: string }> = [];
  const key = cert.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  let keyText: string;
  if (key.asymmetricKeyType === 'ec') {
    keyText = `EC ${details.namedCurve}`;
    if (!STRONG_CURVES.has(String(details.namedCurve))) problems.push({ level: 'fail', text: `curve ${details.namedCurve} is not P-256, P-384 or P-521` });
  } else if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    const bits = details.modulusLength ?? 0;
    keyText = `RSA ${bits}`;
    if (bits < 2048) problems.push({ level: 'fail', text: `RSA ${bits} is below 112-bit security` });
    else if (bits < 3072) problems.push({ level: 'warn', text: `RSA ${bits} gives 112-bit security; ASVS V11.2.3 asks 128 (EC P-256 or RSA ≥ 3072)` });
  } else if (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448') {
    keyText = key.asymmetricKeyType === 'ed25519' ? 'Ed25519' : 'Ed448';
  } else {
    keyText = String(key.asymmetricKeyType);
    problems.push({ level: 'fail', text: `key type ${key.asymmetricKeyType} is not EC, RSA or EdDSA` });
  }

  const oid = signatureAlgorithmOid(cert.raw);
  const signature = STRONG_SIGNATURE_OIDS[oid] ?? WEAK_SIGNATURE_OIDS[oid] ?? `OID ${oid}`;
  if (!(oid in STRONG_SIGNATURE_OIDS)) problems.push({ level: 'fail', text: `signature ${signature} is not SHA-256+ ECDSA/RSA or EdDSA` });

  const weakCrypto = problems.some((problem) => problem.level === 'fail');

  const notAfter = Date.parse(cert.validTo);
  const notBefore = Date.parse(cert.validFrom);
  const daysLeft = Math.floor((notAfter - now) / 86_400_000);
  if (now > notAfter) problems.push({ level: 'fail', text: `expired ${cert.validTo}` });
  else if (now < notBefore) problems.push({ level: 'fail', text: `not valid before ${cert.validFrom}` });
  else if (daysLeft < CERTIFICATE_RENEWAL_WARNING_DAYS) problems.push({ level: 'warn', text: `expires in ${daysLeft} day(s) (${cert.validTo})` });

  const status = problems.some((problem) => problem.level === 'fail') ? 'fail' : problems.length > 0 ? 'warn' : 'ok';
  const summary = `${keyText}, ${signature}, valid until ${cert.validTo}`;
  return { status, detail: problems.length > 0 ? `${summary}: ${problems.map((problem) => problem.text).join('; ')}` : summary, weakCrypto };
}

/** The OID (hex of its content) of Certificate.signatureAlgorithm (RFC 5280 §4.1.1.2): the element after tbsCertificate. */
export function signatureAlgorithmOid(der: Buffer): string {
  const certificate = derElement(der, 0);
  const tbs = derElement(der, certificate.start);
  const algorithm = derElement(der, tbs.end);
  const oid = derElement(der, algorithm.start);
  if (certificate.tag !== 0x30 || tbs.tag !== 0x30 || algorithm.tag !== 0x30 || oid.tag !== 0x06) throw new TypeError('not a DER X.509 certificate');
  return der.subarray(oid.start, oid.end).toString('hex');
}

/** One DER element at `offset` (definite lengths only, as DER requires): its tag and content bounds. */
function derElement(der: Buffer, offset: number): { tag: number; start: number; end: number } {
  if (offset + 2 > der.length) throw new TypeError('truncated DER');
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4 || start + octets > der.length) throw new TypeError('bad DER length');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + der[start + i]!;
    start += octets;
  }
  if (start + length > der.length) throw new TypeError('truncated DER');
  return { tag, start, end: start + length };
}

/**
 * Whether a certificate file (the leaf first, then any intermediates, as servers send them)
 * chains to one of `roots` (PEM; by default the public roots Node trusts): each certificate
 * must be issued and signed by the next one in the file or by a root (ASVS V12.2.2: a public
 * listener needs a certificate browsers and clients trust). Names the reason when it does not.
 */
export function chainsToTrustedRoot(pemFile: string, roots: readonly string[]): { trusted: boolean; reason: string } {
  const blocks = pemFile.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return { trusted: false, reason: 'no certificate in the file' };
  const chain = blocks.map((block) => new X509Certificate(block));
  const trustedRoots = roots.map((root) => new X509Certificate(root));
  let current = chain[0]!;
  for (let depth = 0; depth < 10; depth++) {
    const issuedBy = (candidate: X509Certificate) => current.checkIssued(candidate) && current.verify(candidate.publicKey);
    const root = trustedRoots.find(issuedBy);
    if (root) return { trusted: true, reason: `issued under ${root.subject.split('\n').find((line) => line.startsWith('CN=')) ?? 'a trusted root'}` };
    const next = chain.find((candidate) => candidate !== current && issuedBy(candidate));
    if (!next) {
      return { trusted: false, reason: current.issuer === current.subject ? 'self-signed, not a publicly trusted root' : 'its issuer is neither in the file nor a publicly trusted root' };
    }
    current = next;
  }
  return { trusted: false, reason: 'the chain in the file is too long' };
}
