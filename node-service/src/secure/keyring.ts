import { hkdfSync } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { MIN_SECRET_BYTES } from '../config/defaults.ts';
import { Secret } from '../config/secret.ts';

/**
 * The cluster secrets as keys. Nothing on the wire is keyed with the secret itself: every use gets
 * its own key, derived with HKDF-SHA256 from the secret and a label naming the use (heartbeats, farm
 * membership, replication) and, for datagrams, the cluster, module and sending node. So a key never
 * serves two purposes, and each sender's AEAD nonces (its heartbeat counter) are unique under its key.
 *
 * Rotation: `secret_file` is the secret this node sends with; `next_secret_file`, when set, is a
 * second secret it also accepts. Every sealed message names its secret by a 4-byte key id (derived
 * too: it reveals nothing of the secret), so a receiver picks the right one at once.
 */
const SALT = Buffer.from('vigil cluster secret v2');

export class KeyEntry {
  /** the key id carried in every sealed message (HKDF output: says nothing about the secret) */
  readonly id: Buffer;
  private readonly cache = new Map<string, Buffer>();
  constructor(readonly secret: Secret) {
    this.id = derive(secret.key, 'key id', 4);
  }
  /** a 32-byte key for one purpose (cached) */
  key(label: string): Buffer {
    let k = this.cache.get(label);
    if (!k) {
      k = derive(this.secret.key, label, 32);
      this.cache.set(label, k);
    }
    return k;
  }
  /** 8 hex digits operators compare between nodes (`vigil secret status`) */
  get fingerprint(): string {
    return this.id.toString('hex');
  }
  toJSON(): string {
    return `key ${this.fingerprint}`;
  }
}

function derive(secret: Buffer, label: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, SALT, Buffer.from(`vigil/${label}`), length));
}

export interface KeyFiles {
  readonly secret_file: string;
  readonly next_secret_file?: string;
}

export interface KeyStatus {
  /** the key this node seals with */
  readonly sending: string;
  /** every key it accepts (sending first) */
  readonly accepting: readonly string[];
}

/** The keys of this node, replaceable while it runs (`vigil secret reload`). */
export class KeyRing {
  private sendKey: KeyEntry;
  private nextKey: KeyEntry | undefined;

  constructor(current: Secret, next?: Secret) {
    this.sendKey = new KeyEntry(current);
    this.nextKey = next && new KeyEntry(next);
  }

  static fromFiles(f: KeyFiles): KeyRing {
    return new KeyRing(readSecretFile(f.secret_file, 'secret_file'), f.next_secret_file === undefined ? undefined : readSecretFile(f.next_secret_file, 'next_secret_file'));
  }

  /** replaces both keys at once, or changes nothing when a file is not usable (the error says which) */
  reload(f: KeyFiles): KeyStatus {
    const fresh = KeyRing.fromFiles(f);
    this.sendKey = fresh.sendKey;
    this.nextKey = fresh.nextKey;
    return this.status();
  }

  get sending(): KeyEntry {
    return this.sendKey;
  }

  get accepted(): readonly KeyEntry[] {
    return this.nextKey && !this.nextKey.id.equals(this.sendKey.id) ? [this.sendKey, this.nextKey] : [this.sendKey];
  }

  /** the accepted key with this id */
  byId(id: Buffer): KeyEntry | undefined {
    return this.accepted.find((k) => k.id.equals(id));
  }

  status(): KeyStatus {
    return { sending: this.sendKey.fingerprint, accepting: this.accepted.map((k) => k.fingerprint) };
  }
}

/** Reads a secret file, refusing one that is missing, too short or readable by everyone. */
export function readSecretFile(path: string, key: string): Secret {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new Error(`${key}: cannot read ${path} (${(e as NodeJS.ErrnoException).code}): create it (head -c 32 /dev/urandom | base64 > ${path}; chmod 600 ${path})`);
  }
  if ((st.mode & 0o004) !== 0) throw new Error(`${key}: ${path} is world-readable: chmod 600 ${path}`);
  const secret = Secret.fromFile(path);
  if (secret.key.length < MIN_SECRET_BYTES) throw new Error(`${key}: ${path} holds ${secret.key.length} bytes; use at least ${MIN_SECRET_BYTES}`);
  return secret;
}

/** The keys one module's datagrams are sealed and opened with (heartbeats, or farm membership). */
export interface DatagramKeys {
  /** the key id and key `sender` seals with now */
  seal(sender: string): { readonly id: Buffer; readonly key: Buffer };
  /** the key `sender` sealed with, given the key id it named; undefined when this node does not hold it */
  open(id: Buffer, sender: string): Buffer | undefined;
}

/**
 * Per purpose, cluster, module and sender: each module's monitor counts its own datagrams, so a
 * (key, counter) pair, the AEAD nonce, is never used twice.
 */
export function datagramKeys(ring: KeyRing, purpose: 'heartbeat' | 'farm', cluster: string, module: string): DatagramKeys {
  const label = (sender: string) => `${purpose}/${cluster}/${module}/${sender}`;
  return {
    seal: (sender) => ({ id: ring.sending.id, key: ring.sending.key(label(sender)) }),
    open: (id, sender) => ring.byId(id)?.key(label(sender)),
  };
}
