import { readFileSync } from 'node:fs';

/**
 * The cluster secret as key material. Kept in a class whose inspection hides the bytes, so a secret
 * passed to a logger or thrown inside an error never reaches the logs.
 */
export class Secret {
  readonly #key: Buffer;
  constructor(key: Buffer) {
    this.#key = key;
  }
  static fromFile(path: string): Secret {
    return new Secret(Buffer.from(readFileSync(path, 'utf8').trim(), 'utf8'));
  }
  get key(): Buffer {
    return this.#key;
  }
  toJSON(): string {
    return '[secret]';
  }
  toString(): string {
    return '[secret]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Secret([redacted])';
  }
}
