import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest();
}

function b64url(data: Uint8Array | string): string {
  return Buffer.from(data).toString('base64url');
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

/**
 * A software FIDO2 authenticator for tests: a real P-256 key pair, real 'none'
 * attestation objects (CBOR by the library's encoder) and real ES256 assertion
 * signatures, which the server verifies with @simplewebauthn/server as it would
 * a hardware key's. Knobs let tests forge what an attacker could: another
 * origin, no user verification, a counter that goes backwards.
 */
export class SoftwareAuthenticator {
  readonly credentialId: Buffer;
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  counter = 0;

  /** `credentialId`: reuse another authenticator's id (to forge an assertion with the wrong key). */
  constructor(readonly origin: string, options: { credentialId?: Buffer } = {}) {
    this.credentialId = options.credentialId ?? randomBytes(32);
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#privateKey = pair.privateKey;
    this.#publicKey = pair.publicKey;
  }

  get id(): string {
    return b64url(this.credentialId);
  }

  /** The credential public key as COSE_Key (RFC 9053: kty EC2, alg ES256, crv P-256). */
  cosePublicKey(): Uint8Array {
    const jwk = this.#publicKey.export({ format: 'jwk' });
    return isoCBOR.encode(new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]));
  }

  /** navigator.credentials.create() answered by this authenticator. */
  register(options: PublicKeyCredentialCreationOptionsJSON, forge: { origin?: string; userVerified?: boolean; challenge?: string; rpId?: string } = {}): RegistrationResponseJSON {
    const clientDataJSON = JSON.stringify({ type: 'webauthn.create', challenge: forge.challenge ?? options.challenge, origin: forge.origin ?? this.origin, crossOrigin: false });
    const flags = FLAG_UP | FLAG_AT | (forge.userVerified === false ? 0 : FLAG_UV);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([
      sha256(forge.rpId ?? options.rp.id ?? ''),
      Buffer.from([flags]),
      uint32(this.counter),
      Buffer.alloc(16), // AAGUID: all zero for 'none' attestation
      idLength,
      this.credentialId,
      this.cosePublicKey(),
    ]);
    const attestationObject = isoCBOR.encode(new Map<string, unknown>([
      ['fmt', 'none'],
      ['attStmt', new Map()],
      ['authData', new Uint8Array(authData)],
    ]) as never);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: ['usb'] },
      clientExtensionResults: {},
    };
  }

  /** navigator.credentials.get() answered by this authenticator (the counter moves first). */
  assert(options: PublicKeyCredentialRequestOptionsJSON, forge: { origin?: string; userVerified?: boolean; counter?: number; challenge?: string } = {}): AuthenticationResponseJSON {
    this.counter = forge.counter ?? this.counter + 1;
    const clientDataJSON = JSON.stringify({ type: 'webauthn.get', challenge: forge.challenge ?? options.challenge, origin: forge.origin ?? this.origin, crossOrigin: false });
    const flags = FLAG_UP | (forge.userVerified === false ? 0 : FLAG_UV);
    const authenticatorData = Buffer.concat([sha256(options.rpId ?? ''), Buffer.from([flags]), uint32(this.counter)]);
    // ES256: ECDSA over authenticatorData ‖ SHA-256(clientDataJSON), DER-encoded (WebAuthn §6.3.3).
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), this.#privateKey);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: b64url(clientDataJSON), authenticatorData: b64url(authenticatorData), signature: b64url(signature) },
      clientExtensionResults: {},
    };
  }
}
